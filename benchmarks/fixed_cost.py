"""Fixed cost of one training job: what a job pays besides its steady-state epochs.

    python benchmarks/fixed_cost.py [--repeats 3] [--models all_cnn_c,mobilenet_v2] [--epochs 3]

Each measurement is a fresh subprocess that does what a Snakemake training job does
(scripts/train.py: the job preamble's Snakemake imports, then `cnnablate.training.train.train_run`
on
the default study's run of that model, here with `--epochs` epochs), with timers around each
phase. Processes share CLOCK_MONOTONIC (`time.perf_counter`) on Linux, so the parent's spawn
and exit times line up with the child's marks. Rows (median over repeats, seconds):

- interpreter start: spawn -> the child's first line; job preamble: Snakemake's imports (what
  the `script:` preamble loads); import cnnablate.training.train; import tensorflow; import keras +
  the modules train_run imports;
- data load (three `Split.load`s: memory-mapped arrays, resized once), model build, compile
  and set-up (build end -> fit start: optimizer, callbacks, datasets);
- first epoch (tracing the train and test steps included), steady epoch (median of the later
  ones), tracing = first - steady;
- end of fit, evaluate (test), activation stats, activation curve, provenance, model.save,
  other (history/metrics writes, clean-up), interpreter exit.

`fixed` = everything except the steady epochs, i.e. what a job costs beyond
epochs x steady epoch. The heavy optional modules found in the child's sys.modules are listed.
"""

from __future__ import annotations

import time

T_FIRST = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STUDY_OF_MODEL = {"all_cnn_c": ("activations", "relu"), "mobilenet_v2": ("bn_placement", "before")}
HEAVY = ("tensorflow_datasets", "jax", "sklearn", "scipy", "pandas", "matplotlib", "jsonschema",
         "yaml", "PIL", "h5py", "snakemake")


def default_run(model: str, epochs: int) -> dict:
    import yaml

    from cnnablate.workflow.config import resolve_runs

    root = Path(__file__).resolve().parents[1]
    study, variant = STUDY_OF_MODEL[model]
    runs = resolve_runs(yaml.safe_load((root / "config.yaml").read_text()))
    run = next(r for r in runs if (r["study"], r["variant"], r["seed"]) == (study, variant, 0))
    run["train"]["epochs"] = epochs
    return run


# ---------------------------------------------------------------- child: one training job
def child(run_file: Path, data_dir: Path, out_dir: Path, threads: int, result: Path) -> None:
    marks: list[tuple[str, float]] = [("start", T_FIRST)]
    spans: list[tuple[str, float, float]] = []
    logs: list[tuple[str, float]] = []

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    # What the Snakemake `script:` preamble imports before scripts/train.py runs.
    import pickle  # noqa: F401

    from snakemake.iocontainers import Snakemake  # noqa: F401
    from snakemake.logging import logger  # noqa: F401
    from snakemake.shell import shell  # noqa: F401

    mark("job preamble")
    from cnnablate.training import train as train_mod
    from cnnablate.training.gpu import claim_gpus  # noqa: F401  (scripts/train.py imports it)

    mark("import cnnablate.training.train")
    train_mod.configure_threads(threads)
    # train_run imports these itself, within `_job_imports` where the checkout has it; they are
    # imported here first, the same way, only to time them and to wrap the phases below.
    with getattr(train_mod, "_job_imports", contextlib.nullcontext)():
        import tensorflow  # noqa: F401

        mark("import tensorflow")
        import keras

        from cnnablate.training import actstats, pipeline, provenance
        from cnnablate.zoo.models import build_model  # noqa: F401

    mark("import keras + cnnablate")

    state = {"fit_done": False}

    def wrap(owner, name, label, only_after_fit=False):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if not only_after_fit or state["fit_done"]:
                    spans.append((label, t0, time.perf_counter()))

        setattr(owner, name, timed)

    load = pipeline.Split.load.__func__

    def split_load(cls, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return load(cls, *args, **kwargs)
        finally:
            spans.append(("data load", t0, time.perf_counter()))

    pipeline.Split.load = classmethod(split_load)
    import cnnablate.zoo.models as models_pkg

    wrap(models_pkg, "build_model", "model build")
    fit = keras.Model.fit

    def timed_fit(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fit(self, *args, **kwargs)
        finally:
            spans.append(("fit", t0, time.perf_counter()))
            state["fit_done"] = True

    keras.Model.fit = timed_fit
    wrap(keras.Model, "evaluate", "evaluate (test)", only_after_fit=True)
    wrap(actstats, "activation_statistics", "activation stats")
    wrap(train_mod, "activation_curve", "activation curve")
    for fn in ("package_versions", "git_commit", "machine"):  # machine() calls cpu_model()
        wrap(provenance, fn, "provenance")
    wrap(keras.Model, "save", "model.save")

    def log(message: str) -> None:
        logs.append((message, time.perf_counter()))

    run = json.loads(run_file.read_text())
    train_mod.train_run(run, data_dir, train_mod.RunPaths.in_dir(out_dir), threads=threads, log=log)
    mark("train_run returned")
    result.write_text(json.dumps({
        "marks": marks, "spans": spans, "logs": logs,
        "modules": sorted(m for m in HEAVY if m in sys.modules),
    }))


# ---------------------------------------------------------------- parent
def phases(spawn: float, exit_: float, child_out: dict) -> dict[str, float]:
    marks = dict(child_out["marks"])
    spans: dict[str, float] = {}
    starts: dict[str, float] = {}
    for label, t0, t1 in child_out["spans"]:
        spans[label] = spans.get(label, 0.0) + (t1 - t0)
        starts.setdefault(label, t0)
    epoch_t = [t for msg, t in child_out["logs"] if msg.startswith("epoch ")]
    fit_start = starts["fit"]
    fit_end = fit_start + spans["fit"]
    steady = sorted(b - a for a, b in zip(epoch_t, epoch_t[1:]))
    steady_epoch = steady[len(steady) // 2] if steady else float("nan")
    first_epoch = epoch_t[0] - fit_start
    out = {
        "interpreter start": marks["start"] - spawn,
        "job preamble (snakemake imports)": marks["job preamble"] - marks["start"],
        "import cnnablate.training.train": (
            marks["import cnnablate.training.train"] - marks["job preamble"]
        ),
        "import tensorflow": marks["import tensorflow"] - marks["import cnnablate.training.train"],
        "import keras + cnnablate": marks["import keras + cnnablate"] - marks["import tensorflow"],
        "train_run set-up (threads, seed)": starts["data load"] - marks["import keras + cnnablate"],
        "data load (3 splits, resized)": spans["data load"],
        "model build": spans["model build"],
        "compile + callbacks + datasets": fit_start - starts["model build"]
        - spans["model build"],
        "first epoch": first_epoch,
        "steady epoch": steady_epoch,
        "tracing (first - steady)": first_epoch - steady_epoch,
        "end of fit": fit_end - epoch_t[-1],
    }
    end_keys = ["evaluate (test)", "activation stats", "activation curve", "provenance",
                "model.save"]
    for key in end_keys:
        out[key] = spans.get(key, 0.0)
    out["other end-of-run work"] = marks["train_run returned"] - fit_end - sum(
        out[k] for k in end_keys)
    out["interpreter exit"] = exit_ - marks["train_run returned"]
    out["total wall"] = exit_ - spawn
    n_epochs = len(epoch_t)
    out["fixed (total - epochs x steady)"] = out["total wall"] - n_epochs * steady_epoch
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="all_cnn_c,mobilenet_v2")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per job (>= 2)")
    parser.add_argument("--threads", type=int, default=1, help="TF threads (pipeline: 1)")
    parser.add_argument("--wait-quiet", action="store_true")
    parser.add_argument("--baseline-root", type=Path,
                        help="also measure, interleaved, the cnnablate package of this checkout "
                             "(e.g. the commit before the cuts: git archive HEAD | tar -x -C DIR)")
    parser.add_argument("--child", nargs=6,
                        metavar=("RUN", "DATA", "OUT", "THREADS", "RESULT", "ROOT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_file, data_dir, out_dir, threads, result, root = args.child
        sys.path.insert(0, root)  # whose cnnablate is measured
        child(Path(run_file), Path(data_dir), Path(out_dir), int(threads), Path(result))
        return

    from benchmarks._common import (
        child_env,
        median,
        prepare_digits,
        print_machine,
        table,
        wait_for_quiet,
    )

    print_machine("fixed cost per training job")
    models = args.models.split(",")
    roots = {"": Path(__file__).resolve().parents[1]}
    if args.baseline_root:
        roots[" (baseline)"] = args.baseline_root.resolve()
        print(f"baseline: {roots[' (baseline)']}")
    columns = [m + tag for m in models for tag in roots]
    results: dict[str, list[dict]] = {c: [] for c in columns}
    modules: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="cnnablate-fixed-") as tmp:
        tmp = Path(tmp)
        data = prepare_digits(tmp / "digits")
        runs = {m: default_run(m, max(2, args.epochs)) for m in models}
        for m, run in runs.items():
            (tmp / f"{m}.json").write_text(json.dumps(run))
            print(f"{m}: {run['study']}/{run['variant']} at {run['image_size']}px, width "
                  f"{run['model']['width']}, batch {run['train']['batch_size']}, "
                  f"{run['train']['epochs']} epochs, {args.threads} thread(s)")
        if args.wait_quiet:
            wait_for_quiet()
        for rep in range(args.repeats):
            for m, (tag, root) in ((m, r) for m in models for r in roots.items()):
                # interleaved: drift hits every model and checkout alike
                col = m + tag
                out_dir = tmp / f"run-{col}-{rep}"
                result = tmp / f"result-{col}-{rep}.json"
                cmd = [sys.executable, __file__, "--child", str(tmp / f"{m}.json"), str(data),
                       str(out_dir), str(args.threads), str(result), str(root)]
                load = os.getloadavg()[0]
                spawn = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=child_env())
                exit_ = time.perf_counter()
                if proc.returncode != 0:
                    sys.exit(f"child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
                out = json.loads(result.read_text())
                modules[col] = out["modules"]
                ph = phases(spawn, exit_, out)
                ph["load before"] = load
                results[col].append(ph)
                print(f"  repeat {rep + 1} {col}: total {ph['total wall']:.1f} s, fixed "
                      f"{ph['fixed (total - epochs x steady)']:.1f} s (load {load:.2f})",
                      flush=True)
    keys = list(results[columns[0]][0])
    print(f"\nmedian of {args.repeats} fresh processes, seconds")
    print(table(["phase", *columns],
                [[k, *(median([r[k] for r in results[c]]) for c in columns)] for k in keys]))
    print()
    for c in columns:
        print(f"{c}: optional heavy modules in the job's process: {', '.join(modules[c])}")


if __name__ == "__main__":
    main()
