"""The numbers README.md quotes from a fresh run of its studies, kept so that they cannot go stale.

    python benchmarks/readme_numbers.py                 # rerun both, print the README blocks
    python benchmarks/readme_numbers.py --write         # ... and update the record and README.md
    python benchmarks/readme_numbers.py --workdir DIR   # keep the runs in DIR (reused if there)
    python benchmarks/readme_numbers.py --fingerprint   # only today's numbers fingerprint

Reruns, each from nothing in a temporary copy of this working tree (no results, no Snakemake
records; `snakemake --cores N report/index.html`, N = --cores, default 4 as `make report`):
the default study (config.yaml) and the tuned digits studies (studies/tuned_digits.yaml).
From their tables it takes what the README quotes: the wall time from nothing to the report,
the runs trained (run folders less those copied from another study's identical run), the rounds
of adaptive seeds, every comparison's verdict (difference, interval and Holm p where the
README gives them) and each tuned variant's selection. It prints the README's two generated
blocks, exactly as they go into README.md between their `<!-- readme_numbers:NAME -->` markers;
`--write` puts them there and writes the measurement's record, benchmarks/readme_numbers.json
(date, commit, machine, the numbers fingerprint, the numbers).

What makes them stale is a change to what computes them, so the record carries the *numbers
fingerprint* (`numbers_fingerprint`): the code fingerprints (cnnablate.workflow.fingerprint) of
every job the two configs run that computes a number (data preparation, training of each
model/activation, copying shared runs, tables and decisions, round decisions, tuning selection),
the two configs as validated (defaults filled in), and the pinned versions of the packages that
compute (requirements.lock). tests/test_readme_numbers.py fails when today's fingerprint
differs from the record's, when the record's commit has another fingerprint, or when README's
blocks differ from what the record renders to: rerun this script with --write then.
Timings are of the machine it ran on (its cores and load at the start are printed with them).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this tree's cnnablate, also where another one is installed

RECORD = ROOT / "benchmarks" / "readme_numbers.json"
README = ROOT / "README.md"
# name -> its config file; each runs to its report
CONFIGS = {
    "default": "config.yaml",
    "tuned_digits": "studies/tuned_digits.yaml",
}
# name -> the snakemake arguments README gives for it (`make report`'s; the tuned example's,
# whose default target, rule all, is the report), `{cores}` to fill in
COMMANDS = {
    "default": "--cores {cores} report/index.html",
    "tuned_digits": "--cores {cores} --configfile studies/tuned_digits.yaml",
}
# Packages whose version can change a number (requirements.lock pins them).
NUMBER_PACKAGES = ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "numpy", "scipy",
                   "scikit-learn", "pandas", "statsmodels")
# Files whose uncommitted change makes the measurement not that of its commit.
RESULT_SOURCES = ("cnnablate", "scripts", "rules", "Snakefile", "schemas", "config.yaml",
                  "studies", "requirements.lock")
WIDTH = 100  # README's line length
MARK = re.compile(r"(<!-- readme_numbers:(\w+) -->\n)(.*?)(<!-- /readme_numbers:\2 -->)", re.S)


# --- the fingerprint -----------------------------------------------------------------------------

def pinned_versions(lock: Path, names=NUMBER_PACKAGES) -> dict[str, str]:
    """`name==version` pins of `names` in a requirements lock file."""
    found = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line.strip())
        if m and m.group(1).lower().replace("_", "-") in names:
            found[m.group(1).lower()] = m.group(2)
    return dict(sorted(found.items()))


def numbers_fingerprint(root: Path = ROOT) -> str:
    """12 hex digits over what computes README's numbers (module docstring); planning only, no
    TensorFlow, under a second."""
    import yaml

    from cnnablate.workflow import config as configs
    from cnnablate.workflow.fingerprint import Fingerprints

    code = Fingerprints(root)
    parts: dict[str, object] = {
        "jobs": [code.aggregate(), code.decide(), code.select_tuning(), code.share()],
        "packages": pinned_versions(root / "requirements.lock"),
    }
    schema = configs.load_schema(root / "schemas" / "config.schema.yaml")
    for name, path in CONFIGS.items():
        # validated: its defaults filled in
        config = configs.validate(yaml.safe_load((root / path).read_text()), schema, path)
        resolved = configs._resolve(config)  # deciding and tuning runs, one schema parse
        runs = resolved.runs + resolved.tuning.runs
        parts[f"config:{name}"] = config
        parts[f"train:{name}"] = sorted({code.train(run) for run in runs})
        parts[f"prepare:{name}"] = sorted({code.prepare(spec["source"])
                                           for spec in config["datasets"].values()})
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def git(*args: str, root: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def commit_state(root: Path = ROOT) -> tuple[str, bool]:
    """(HEAD's commit, whether result-relevant files differ from it)."""
    commit = git("rev-parse", "--short=12", "HEAD", root=root)
    dirty = bool(git("status", "--porcelain", "--", *RESULT_SOURCES, root=root))
    return commit, dirty


# --- measuring ------------------------------------------------------------------------------------

def run_study(name: str, workdir: Path, cores: int) -> float:
    """Wall seconds of `snakemake --cores N report/index.html` on config `name` from nothing, in
    `workdir` (a copy of this tree); reused, not rerun, where a finished one is already there."""
    timing = workdir / "readme_numbers_seconds.json"
    if timing.is_file():
        return json.loads(timing.read_text())["seconds"]
    from tests.workflow import copy_workflow

    if workdir.exists():
        shutil.rmtree(workdir)
    copy_workflow(workdir)
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), *COMMANDS[name].format(cores=cores).split()]
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    print(f"  {name}: {' '.join(cmd[1:])} in {workdir}", flush=True)
    start = time.monotonic()
    subprocess.run(cmd, cwd=workdir, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    timing.write_text(json.dumps({"seconds": seconds}))
    return seconds


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if value != value else value  # NaN: not measured


def read_results(name: str, workdir: Path, seconds: float) -> dict:
    """What README quotes from a finished copy: runs, rounds, verdicts, selections."""
    import pandas as pd
    import yaml

    config = yaml.safe_load((workdir / CONFIGS[name]).read_text())
    metrics = sorted((workdir / "results" / "runs").rglob("metrics.json"))
    copied = sum(1 for m in metrics if json.loads(m.read_text()).get("trained_as"))
    studies = {}
    for study, settings in config["studies"].items():
        folder = workdir / "results" / "studies" / study
        paired = pd.read_csv(folder / "paired.csv")
        train = settings.get("train") or {}
        entry = {
            "baseline": str(paired["baseline"].iloc[0]) if len(paired) else None,
            "metric": str(paired["metric"].iloc[0]) if len(paired) else None,
            "adaptive": isinstance(settings.get("seeds"), dict),
            "rounds": len(list((folder / "rounds").glob("round*.json"))),
            "learning_rate": train.get("learning_rate"),
            "comparisons": [
                {"variant": str(r["variant"]), "verdict": str(r["verdict"]),
                 "diff": _number(r["diff_mean"]), "low": _number(r["diff_ci_low"]),
                 "high": _number(r["diff_ci_high"]), "p_holm": _number(r["p_holm"]),
                 "pairs": int(r["n_pairs"])}
                for r in paired.to_dict("records")
            ],
        }
        selection = folder / "tuning" / "selection.json"
        if selection.is_file():
            tune = settings["tune"]
            chosen = json.loads(selection.read_text())["variants"]
            order = [v for v in settings.get("variants") or {} if v in chosen]
            entry["tuning"] = {
                "seeds": list(tune["seeds"]),
                "candidates": {k: v for k, v in tune.items()
                               if k not in ("seeds", "metric", "epochs")},
                # in the study's variant order (the file's is alphabetical)
                "selected": {v: (chosen[v] or {}).get("values")
                             for v in [*order, *sorted(set(chosen) - set(order))]},
            }
        studies[study] = entry
    return {
        "command": f"snakemake {COMMANDS[name]}",
        "seconds": round(seconds, 1),
        "confidence": (config.get("report") or {}).get("confidence", 0.95),
        "run_folders": len(metrics),
        "copied": copied,
        "trained": len(metrics) - copied,
        "studies": studies,
    }


def measure(workdir: Path, cores: int) -> dict:
    """Both configs from nothing, one after the other; the record (without README's text)."""
    commit, dirty = commit_state()
    load = os.getloadavg()[0]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 0
    record = {
        "date": datetime.date.today().isoformat(),
        "commit": commit,
        "dirty": dirty,
        "fingerprint": numbers_fingerprint(),
        "machine": f"{usable} cores, load average {load:.1f} at the start",
        "cores": cores,
        "measurements": {},
    }
    for name in CONFIGS:
        seconds = run_study(name, workdir / name, cores)
        record["measurements"][name] = read_results(name, workdir / name, seconds)
    return record


# --- README's text ----------------------------------------------------------------------------

def duration(seconds: float) -> str:
    """'3 min 27 s' (whole seconds)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _signed(value: float, scale: float) -> str:
    return f"{value * scale:+.1f}".replace("-", "−")


def _difference(c: dict, metric: str, with_p: bool, confidence: float = 0.95) -> str:
    """'−4.2 test-accuracy points (95% interval −4.9 to −3.5, Holm p 0.0015)'."""
    if c["diff"] is None:
        return ""
    accuracy = metric.endswith("accuracy")
    scale, unit = (100, f" {metric.replace('best_', '').replace('_', '-')} points") if (
        accuracy) else (1, f" {metric}")
    text = f"{_signed(c['diff'], scale)}{unit}"
    inside = []
    if c["low"] is not None:
        inside.append(f"{round(100 * confidence)}% interval {_signed(c['low'], scale)} to "
                      f"{_signed(c['high'], scale)}")
    if with_p and c["p_holm"] is not None:
        inside.append(f"Holm p {c['p_holm']:.2g}")
    return text + (f" ({', '.join(inside)})" if inside else "")


def _values(values: dict | None) -> str:
    return ", ".join(str(v) for v in (values or {}).values())


def _header(record: dict, m: dict) -> str:
    return (f"Measured by `python benchmarks/readme_numbers.py` on {record['date']} (commit "
            f"`{record['commit']}`, numbers fingerprint `{record['fingerprint']}`; "
            f"{record['machine']}; `{m['command'].format(cores=record['cores'])}` from "
            f"nothing): **{duration(m['seconds'])}** end to end, {m['trained']} runs trained"
            + (f" ({m['run_folders']} run folders, {m['copied']} of them copied from another "
               "study's identical run)" if m["copied"] else "") + ".")


def default_block(record: dict) -> str:
    m = record["measurements"]["default"]
    parts = []
    for study, s in m["studies"].items():
        rounds = (f", {s['rounds']} round{'s' if s['rounds'] != 1 else ''} of adaptive seeds"
                  if s["adaptive"] else "")
        verdicts = ", ".join(f"{c['variant']} `{c['verdict']}`" for c in s["comparisons"])
        parts.append(f"`{study}` (against {s['baseline']}{rounds}): {verdicts}")
    text = _header(record, m) + " Verdicts: " + "; ".join(parts) + "."
    return textwrap.fill(text, WIDTH, break_on_hyphens=False, break_long_words=False)


def tuned_block(record: dict) -> str:
    m = record["measurements"]["tuned_digits"]
    sentences = [_header(record, m)]
    for study, s in m["studies"].items():
        comparisons = "; ".join(
            f"`{c['variant']}` is **`{c['verdict']}`**"
            + (f", {d}" if (d := _difference(c, s["metric"], not s["adaptive"],
                                             m.get("confidence", 0.95))) else "")
            for c in s["comparisons"])
        if "tuning" in s:
            t = s["tuning"]
            grids = "; ".join(f"{k} over {_values(dict(enumerate(v)))}"
                              for k, v in t["candidates"].items())
            chosen = ", ".join(f"`{v}` selects {_values(values)}"
                               for v, values in t["selected"].items())
            seeds = ("seeds " if len(t["seeds"]) > 1 else "seed ") + ", ".join(
                str(x) for x in t["seeds"])
            setting = f"tuned on {seeds}, {grids}: {chosen}"
        else:
            setting = f"every variant at learning rate {s['learning_rate']}"
        sentences.append(f"`{study}` ({setting}), against `{s['baseline']}`: {comparisons}.")
    return textwrap.fill(" ".join(sentences), WIDTH, break_on_hyphens=False,
                         break_long_words=False)


BLOCKS = {"default": default_block, "tuned_digits": tuned_block}


def render_blocks(record: dict) -> dict[str, str]:
    """README's generated text per block name."""
    return {name: block(record) for name, block in BLOCKS.items()}


def readme_blocks(readme: str) -> dict[str, str]:
    """The generated blocks README holds now, by name (text between the markers)."""
    return {m.group(2): m.group(3).rstrip("\n") for m in MARK.finditer(readme)}


def replace_blocks(readme: str, blocks: dict[str, str]) -> str:
    missing = set(blocks) - set(readme_blocks(readme))
    if missing:
        raise SystemExit(f"README.md has no <!-- readme_numbers:NAME --> block for "
                         f"{', '.join(sorted(missing))}")
    return MARK.sub(lambda m: f"{m.group(1)}{blocks.get(m.group(2), m.group(3).rstrip())}\n"
                              f"{m.group(4)}", readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=4, help="snakemake --cores (default 4)")
    parser.add_argument("--workdir", type=Path,
                        help="keep the copies here (a finished one there is reused)")
    parser.add_argument("--write", action="store_true",
                        help="write benchmarks/readme_numbers.json and README.md's blocks")
    parser.add_argument("--fingerprint", action="store_true",
                        help="print today's numbers fingerprint only")
    args = parser.parse_args(argv)
    if args.fingerprint:
        print(numbers_fingerprint())
        return 0
    commit, dirty = commit_state()
    if args.write and dirty:
        raise SystemExit("readme_numbers: --write needs the measured code committed (the record "
                         f"names the commit); uncommitted changes under {' '.join(RESULT_SOURCES)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cnnablate-readme-numbers-"))
    record = measure(workdir.resolve(), args.cores)
    for name, text in render_blocks(record).items():
        print(f"\n<!-- readme_numbers:{name} -->\n{text}\n<!-- /readme_numbers:{name} -->")
    if args.write:
        RECORD.write_text(json.dumps(record, indent=1) + "\n")
        README.write_text(replace_blocks(README.read_text(), render_blocks(record)))
        print(f"\nwrote {RECORD.relative_to(ROOT)} and README.md's blocks")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
