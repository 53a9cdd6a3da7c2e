"""Helpers shared by the benchmark scripts: machine facts, waiting for a quiet machine, medians,
tables. Plain Python (no TensorFlow), so a benchmark's parent process stays light.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET_BUSY = 0.15  # fraction of all CPUs


sys.path.insert(0, str(ROOT))
from cnnablate.training.provenance import cpu_model  # noqa: E402  (one definition, plain Python)


def gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def load1() -> float:
    return os.getloadavg()[0]


def cpu_busy(seconds: float = 2.0) -> float:
    """Fraction of all CPUs busy over the next `seconds` (from /proc/stat), or -1 if unknown."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return -1.0
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def machine_lines() -> list[str]:
    """The facts BENCHMARKS.md asks for: date, cores, CPU model, GPU, Python, load."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    la = os.getloadavg()
    gpu = ", ".join(gpus()) or "none"
    return [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {usable} cores usable ({os.cpu_count()} online), CPU {cpu_model()!r}, "
        f"GPU: {gpu}",
        f"python {platform.python_version()} on {platform.platform()}",
        f"load average (1/5/15 min) at start: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}",
    ]


def print_machine(title: str) -> None:
    print(f"# {title}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    for line in machine_lines():
        print(line)
    print(flush=True)


def wait_for_quiet(
    max_wait_s: float = 1200.0, threshold: float = QUIET_BUSY, poll_s: float = 20.0
) -> float:
    """Sleep until less than `threshold` of the CPUs is busy (at most `max_wait_s`); returns
    the load average measurement starts under. Busy time from /proc/stat, not the load
    average: this VM idles at a load average of ~1 (a kernel thread counted as runnable).
    Never fails: a busy machine is reported, not hidden."""
    deadline = time.monotonic() + max_wait_s
    busy = cpu_busy()
    while busy >= threshold and time.monotonic() < deadline:
        print(f"  waiting for a quiet machine: {busy:.0%} of CPU busy", flush=True)
        time.sleep(poll_s)
        busy = cpu_busy()
    if busy >= threshold:
        print(f"  machine still busy after {max_wait_s:.0f} s ({busy:.0%} of CPU); measuring "
              "anyway", flush=True)
    return load1()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes straight into BENCHMARKS.md)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


SLURM_PROBE_NOTE = (
    "snakemake-executor-plugin-slurm (requirements-slurm.txt, not in the default install) runs "
    "`scontrol show config` whenever Snakemake starts; where SLURM's client is installed but no "
    "controller answers (this test machine), that takes ~9 s to fail. Benchmarks put an "
    "`scontrol` that fails at once first on PATH (as where SLURM is absent or answers); "
    "--real-scontrol measures as installed."
)
_SHIM_DIR: Path | None = None


def _scontrol_shim() -> Path:
    global _SHIM_DIR
    if _SHIM_DIR is None:
        import tempfile

        _SHIM_DIR = Path(tempfile.mkdtemp(prefix="cnnablate-bench-bin-"))
        shim = _SHIM_DIR / "scontrol"
        shim.write_text("#!/bin/sh\necho 'scontrol: benchmark shim' >&2\nexit 1\n")
        shim.chmod(0o755)
        atexit.register(shutil.rmtree, _SHIM_DIR, True)
    return _SHIM_DIR


def slurm_plugin_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def child_env(real_scontrol: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a measured subprocess: cnnablate importable, TF's chatter off, and
    unless `real_scontrol`, an `scontrol` that fails at once where the SLURM plugin is
    installed (see SLURM_PROBE_NOTE)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not real_scontrol and slurm_plugin_installed():
        env["PATH"] = f"{_scontrol_shim()}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def prepare_digits(dest: Path) -> Path:
    """The default study's dataset, prepared exactly as the workflow's prepare step does."""
    if not (dest / "meta.json").exists():
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from cnnablate.data.prepare import prepare_dataset; "
             "prepare_dataset('digits', {'source': 'sklearn_digits'}, sys.argv[1])", str(dest)],
            check=True, env=child_env(), cwd=ROOT,
        )
    return dest


def start_together(spec: dict) -> None:
    """Packed runs start their timed steps together: each marks itself in the barrier folder
    (`spec["barrier"]`) and waits until all `spec["parties"]` have."""
    if not spec.get("barrier"):
        return
    from pathlib import Path

    barrier = Path(spec["barrier"])
    (barrier / str(os.getpid())).touch()
    while len(list(barrier.iterdir())) < spec["parties"]:
        time.sleep(0.01)


# --- command lines shared by the simulations and the real-data measurements -------------------

def add_sim_outputs(parser: argparse.ArgumentParser) -> None:
    """A simulation's outputs: --json (the record), --figure, and --tables (print BENCHMARKS.md's
    tables, and draw --figure, from a finished run's record instead of simulating)."""
    parser.add_argument("--json", type=Path)
    parser.add_argument("--figure", type=Path)
    parser.add_argument("--tables", type=Path, metavar="JSON",
                        help="print BENCHMARKS.md's tables from a finished run's JSON (and draw "
                             "--figure from it) instead of simulating")


def replay_tables(args: argparse.Namespace, tables: Callable[[dict], str],
                  plot: Callable[[dict, Path], None]) -> bool:
    """With --tables: print and draw from that record; True when done so."""
    if not args.tables:
        return False
    done = json.loads(args.tables.read_text())
    print(tables(done))
    if args.figure:
        plot(done, args.figure)
    return True


def save_sim_outputs(args: argparse.Namespace, out: dict,
                     plot: Callable[[dict, Path], None]) -> None:
    """A finished simulation: its seconds printed, its record and figure written if asked."""
    print(f"{out['seconds']:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    if args.figure:
        plot(out, args.figure)


def workdir_main(doc: str, run_measurements: Callable[[Path], float],
                 load: Callable[[Path], object], report: Callable[[object], str]) -> None:
    """A real-data measurement's command line: train into --workdir (unless --analyze-only),
    then print the report of what is there."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--analyze-only", action="store_true")
    args = parser.parse_args()
    if not args.analyze_only:
        print(f"training: {run_measurements(args.workdir):.0f} s wall", file=sys.stderr)
    print(report(load(args.workdir)))


def sim_machine() -> dict:
    """What a simulation's record says of the machine: CPU model, cores, Python."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()}
