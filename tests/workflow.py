"""Helpers for tests that run the real Snakemake workflow in a throw-away copy of the repo."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "results", "logs", ".snakemake", "__pycache__", ".pytest_cache",
    ".ruff_cache", "index.html", "figures", "artifacts", "*.egg-info",
)


def copy_workflow(dest: Path) -> Path:
    """The workflow's files (not results) copied to `dest`, so tests may edit code freely."""
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE, dirs_exist_ok=True)
    return dest


# What a workflow run leaves besides the prepared data (removed by `without_results`).
RESULTS_BUT_DATA = ("results/runs", "results/studies", "results/benchmarks", "results/smoke",
                    "logs", "report/index.html", "report/figures", "report/results", "report/smoke",
                    "artifacts")


def copy_finished(finished: Path, dest: Path) -> Path:
    """A finished workflow copied to `dest` with its results and Snakemake's records, file
    times kept (so that nothing looks changed)."""
    return Path(shutil.copytree(finished, dest, symlinks=True))


def copy_prepared(finished: Path, dest: Path) -> Path:
    """A finished workflow copied to `dest` with only its prepared data (and Snakemake's record
    of it): a new config there trains at once, without preparing the data again."""
    work = copy_finished(finished, dest)
    for rel in RESULTS_BUT_DATA:
        path = work / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return work


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900,
              env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), "--directory", str(workdir), "-s", str(workdir / "Snakefile"), *args]
    full_env = {**os.environ, "PATH": f"{exe.parent}:{os.environ.get('PATH', '')}", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
            f"{proc.stderr[-6000:]}"
        )
    return proc


def _as_foreground_job() -> None:
    """In the child, before exec: its own process group (the test sends it Ctrl-C), and SIGINT
    handled by default. A shell starts background commands (`cmd &`, `nohup cmd &` from a
    script) with SIGINT ignored, and an ignored signal stays ignored across exec: without this a
    suite started that way would send a Ctrl-C nobody receives."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def foreground(cmd: list[str], **kwargs) -> subprocess.Popen:
    """`cmd` started as a user's foreground command that Ctrl-C (SIGINT to its process group,
    `os.killpg(proc.pid, signal.SIGINT)`) reaches, however the test suite was started."""
    return subprocess.Popen(cmd, preexec_fn=_as_foreground_job, **kwargs)


_RULE = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):\s*$")
_WILDCARDS = re.compile(r"^\s*wildcards: (.*)$")
# A rule with a `message:` prints "Job N: <message>" instead of its block; ours start with
# the rule's name and its wildcards as key=value, in the order of the rule's output pattern.
_MESSAGE = re.compile(r"^Job \d+: (\w+)((?: \w+=[^\s=]+)*)(?: \(|$)")


def planned_jobs(workdir: Path, *args: str) -> list[tuple]:
    """What `snakemake -n` would run, as sorted (rule, wildcards...) tuples."""
    proc = snakemake(workdir, "-n", *args)
    return jobs_in(proc.stdout + proc.stderr)


def jobs_in(output: str) -> list[tuple]:
    """The jobs a `snakemake -n` output lists, as sorted (rule, wildcards...) tuples."""
    jobs, current = [], None
    for line in output.splitlines():
        if m := _MESSAGE.match(line):
            if current:
                jobs.append(current)
            values = [pair.split("=", 1)[1] for pair in m.group(2).split()]
            current = (m.group(1), *values)
        elif m := _RULE.match(line):
            if current:
                jobs.append(current)
            current = (m.group(1),)
        elif current and (m := _WILDCARDS.match(line)):
            pairs = [p.split("=", 1) for p in m.group(1).split(", ")]
            current = current + tuple(v for _, v in pairs)
    if current:
        jobs.append(current)
    return sorted(j for j in jobs if j[0] != "all")


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class SharedBuildError(RuntimeError):
    """Another process's build of a shared result failed."""


def build_once(shared: Path, name: str, build: Callable[[], dict]) -> dict:
    """`build()`'s result (a JSON-able dict), built by the first of several processes to ask
    and read by the others: pytest-xdist workers sharing a session result in their common
    folder `shared`. A failed build is recorded, and the others fail at once with its error
    instead of building again."""
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the first one has built or failed
        record = shared / f"{name}.json"
        if record.exists():
            saved = json.loads(record.read_text())
            if "error" in saved:
                raise SharedBuildError(f"the shared {name} failed to build:\n{saved['error']}")
            return saved
        try:
            result = build()
        except BaseException as error:
            record.write_text(json.dumps({"error": f"{type(error).__name__}: {error}"[-8000:]}))
            raise
        record.write_text(json.dumps(result))
        return result
