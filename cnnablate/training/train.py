"""One training run: (study, variant, seed) -> history.csv, metrics.json, model.keras.

`train_run` goes through the phases in order: `set_up` (threads, the Keras backend, seed),
`load_data`, `build_and_compile`, `input_feed` (the splits on the device, tf.data, or numpy
batches on the JAX backend), `fit_with_resume`, then `summarize` (pure: best, last, diverged)
and `write_outputs`.

The run's Keras backend (`train.backend`: tensorflow, or jax: cnnablate/training/backend.py) is
set up inside `train_run`, before Keras is imported: TensorFlow's thread pools are sized when it
starts, and Keras picks its backend at import. A JAX run never imports TensorFlow: it is hidden
from the process like SKIPPED_IMPORTS, its batches come from cnnablate/training/numpy_feed.py and
its TensorBoard scalars from the tensorboard package's own writer.

Keras callbacks do the bookkeeping: an epoch backup for resuming a killed job at its last
finished epoch, `CSVLogger` for the per-epoch history, `stop_on_non_finite_loss` for
divergence (per epoch: no per-batch hook, so Keras's callbacks stay asynchronous on JAX).
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import gc
import importlib.abc
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnablate.base import layout
from cnnablate.base.atomic import atomic_path, write_json_atomic
from cnnablate.base.backends import run_backend
from cnnablate.base.ids import config_hash
from cnnablate.data.partition import (
    NOT_EVALUATED,
    PREDICTIONS_DTYPE,
    SPLITS,
    load_partition,
    saves_predictions,
)
from cnnablate.data.splits import subset_indices
from cnnablate.data.store import load_meta, load_prepared
from cnnablate.training import monitor
from cnnablate.training.backend import configure_jax, device_names, prepare_jax

if TYPE_CHECKING:  # imports TensorFlow: only after `set_up`
    from cnnablate.training.device import Feed

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
METRICS = ["accuracy"]
STATS_IMAGES = 256
BACKUP_STATE = "state.npz"


@dataclass(frozen=True)
class RunPaths:
    history: Path
    metrics: Path
    model: Path | None  # None: a halving rung's snapshot, which keeps no model
    predictions: Path | None = None  # None: next to metrics.json
    # the run folder's, where the outputs are a rung's snapshot in a folder of its own
    work: Path | None = None

    @property
    def work_dir(self) -> Path:
        """Resume state that survives a kill (Snakemake deletes a failed job's outputs), and
        a halving rung's state that the next rung continues from."""
        return self.work or layout.resume_dir(self.metrics.parent)

    @classmethod
    def in_dir(cls, run_dir: str | Path) -> RunPaths:
        run_dir = Path(run_dir)
        return cls(run_dir / layout.HISTORY, run_dir / layout.METRICS, run_dir / layout.MODEL,
                   run_dir / layout.PREDICTIONS)

    @property
    def predictions_file(self) -> Path:
        return self.predictions or self.metrics.parent / layout.PREDICTIONS


def configure_threads(threads: int) -> None:
    """Size TensorFlow's and oneDNN's thread pools; must run before TensorFlow is imported."""
    for var in ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(max(1, min(threads, 2)))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


# Keras imports these when they are installed, for integrations a training job never uses (its
# scikit-learn wrapper, matplotlib image gallery, pandas DataFrame inputs; scipy comes with
# scikit-learn): about 2 s of every job's start-up on a 2-core CPU (benchmarks/fixed_cost.py).
# TensorFlow's tf.lite imports JAX where it is installed (`make`'s venv has it, for the JAX
# backend): another 0.5 s of a TensorFlow job's `import tensorflow` (BENCHMARKS.md §3).
SKIPPED_IMPORTS = frozenset({"sklearn", "matplotlib", "pandas", "scipy", "jax"})
# JAX itself imports scipy; a JAX run must not import TensorFlow (Keras would, where it is
# installed, to seed it: keras.utils.set_random_seed).
SKIPPED_IMPORTS_JAX = frozenset({"sklearn", "matplotlib", "pandas", "tensorflow"})


class _SkipImports(importlib.abc.MetaPathFinder):
    def __init__(self, names: frozenset[str] = SKIPPED_IMPORTS):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{name}: not imported by a training job", name=name)
        return None


@contextlib.contextmanager
def _job_imports(skipped: frozenset[str] = SKIPPED_IMPORTS) -> Iterator[None]:
    """Lighter start and exit of a process that trains and ends (a Snakemake job).

    Only where nothing of TensorFlow, Keras or SKIPPED_IMPORTS is imported yet (a notebook
    that imported any of them is left as it is): Keras is imported with SKIPPED_IMPORTS hidden
    (so in this process Keras treats them as not installed), and the interpreter skips its
    final garbage collection at exit (`gc.freeze` at exit: ~2 s of walking TensorFlow's object
    graph; every output is written and closed before then). With `skipped` naming tensorflow
    (SKIPPED_IMPORTS_JAX) the names stay hidden for the rest of the process.
    """
    fresh = not ({"keras", "tensorflow", "jax", *skipped} & sys.modules.keys())
    finder = _SkipImports(skipped)
    if fresh:
        sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if fresh:
            if "tensorflow" not in skipped:
                sys.meta_path.remove(finder)
            # else it stays: a JAX run must not import TensorFlow later either (Keras's saving
            # and callbacks use it when they find it)
            atexit.register(gc.freeze)


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _resume_epoch(work_dir: Path, backend: str = "tensorflow", lineage: str | None = None,
                  target: int | None = None) -> int:
    """Epochs the backup holds, read from the file that holds the state itself; 0 when it
    was saved by another Keras backend (a killed run whose study then switched backends:
    its state is no start for this one). Backups from before backends: TensorFlow's.

    Also 0 when the backup was saved by another `lineage` (a halving rung's state kept for
    the next rung, whose run config or code changed since) or holds more than `target`
    epochs (a rung retrained after a later rung's state was saved): training cannot go back."""
    state = work_dir / "backup" / BACKUP_STATE
    if not state.exists():
        return 0
    with np.load(state) as saved:
        saved_by = str(saved["backend"]) if "backend" in saved.files else "tensorflow"
        saved_lineage = str(saved["lineage"]) if "lineage" in saved.files else None
        epoch = int(saved["epoch"])
    if saved_by != backend:
        return 0
    if lineage is not None and saved_lineage is not None and saved_lineage != lineage:
        return 0
    return 0 if target is not None and epoch > target else epoch


def _trim_history(path: Path, epochs_done: int) -> None:
    """Keep only rows of epochs the backup holds (a kill can fall between the two writes)."""
    rows = [r for r in _read_history(path) if int(r["epoch"]) < epochs_done]
    if not path.exists():
        return
    with open(path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def _state_variables(model) -> list:
    """Everything a resumed run needs to continue bit-identically: the model's variables
    (weights, batch-norm statistics and the random-generator states of dropout, RReLU, ...)
    and the optimizer's (iteration count, learning rate, momenta)."""
    return [*model.variables, *model.optimizer.variables]


def _save_backup(backup: Path, model, epochs_done: int, lineage: str | None = None) -> None:
    """One file per backup, renamed into place, holding the epoch count with the state (so the
    two never disagree). Replaces Keras's `BackupAndRestore`, whose .weights.h5 writer walks
    every layer in Python: 0.57 s a backup for the default study's MobileNetV2, whose epochs
    take ~1.1 s (np.savez: 0.05 s; BENCHMARKS.md, figure 2)."""
    import keras

    backup.mkdir(parents=True, exist_ok=True)
    variables = _state_variables(model)
    with atomic_path(backup / BACKUP_STATE) as tmp:
        np.savez(tmp, epoch=epochs_done, backend=keras.backend.backend(),
                 **({"lineage": lineage} if lineage else {}),
                 **{f"v{i}": v.numpy() for i, v in enumerate(variables)})
    # A progress marker for people (and the kill test) watching a run; resuming reads state.npz.
    write_json_atomic(backup / "training_metadata.json", {"epoch": epochs_done})


def _restore_backup(backup: Path, model) -> None:
    """Load `_save_backup`'s state into `model`, whose optimizer is built already."""
    variables = _state_variables(model)
    with np.load(backup / BACKUP_STATE) as saved:
        count = sum(name.startswith("v") and name[1:].isdigit() for name in saved.files)
        values = [saved[f"v{i}"] for i in range(count)]
    if [tuple(v.shape) for v in values] != [tuple(v.shape) for v in variables]:
        raise RuntimeError(f"{backup} holds the state of another model; delete {backup.parent}")
    for var, value in zip(variables, values, strict=True):
        var.assign(value)


def _build_before_fit(model, batch) -> None:
    """Create the optimizer's, loss's and metrics' variables eagerly, before `fit` traces.

    Without a distribution strategy Keras creates them inside the first trace of the train
    step, and a tf.function that creates variables is traced a second time: that doubled the
    first epoch of the default MobileNetV2 (~15 s -> ~8 s on a 2-core CPU; BENCHMARKS.md).
    Inference mode on one batch draws no random numbers, so the run itself is unchanged."""
    x, y = batch
    model.optimizer.build(model.trainable_variables)
    y_pred = model(x, training=False)
    model.compute_loss(x, y, y_pred)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()


def _make_optimizer(keras, train: dict, total_steps: int):
    lr = train["learning_rate"]
    if train["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, total_steps))
    wd = train["weight_decay"] or None
    name = train["optimizer"]
    if name == "sgd":
        return keras.optimizers.SGD(
            lr, momentum=train["momentum"], nesterov=train["nesterov"], weight_decay=wd
        )
    if name == "adam":
        return keras.optimizers.Adam(lr, weight_decay=wd)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=train["weight_decay"])
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr, momentum=train["momentum"], weight_decay=wd)
    raise ValueError(f"train.optimizer: unknown optimizer {name!r}")


def activation_curve(spec, lo: float = -4.0, hi: float = 4.0, points: int = 161) -> dict:
    """The activation and its derivative on a grid, computed by the very layer the run uses
    (a fresh one, in inference mode), for the report's figure; the derivative by the
    backend's own autodiff."""
    import keras
    import numpy as np

    from cnnablate.zoo import activations

    layer = activations.get(spec)
    grid = np.linspace(lo, hi, points, dtype=np.float32).reshape(1, 1, 1, -1)
    if keras.backend.backend() == "jax":
        import jax

        y = layer(grid, training=False)  # builds the layer (PReLU's slope) outside the trace
        dy = jax.grad(lambda v: layer(v, training=False).sum())(jax.numpy.asarray(grid))
        x = grid
    else:
        import tensorflow as tf

        x = tf.constant(grid)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=False)
        dy = tape.gradient(y, x)
    flat = (lambda t: [round(float(v), 6) for v in np.ravel(t)])
    return {"x": flat(x), "y": flat(y), "dy": flat(dy)}


@dataclass
class RunData:
    """A run's prepared dataset: its meta.json and the three splits at the run's image size."""

    meta: dict
    splits: dict  # split name -> cnnablate.training.pipeline.Split (numpy_feed.NumpySplit: JAX)
    partition: dict  # metrics.json's `partition`: {mode, id, sizes, redrawn}
    prepared_sizes: dict  # split name -> images in the prepared file (predictions' length)


def set_up(run: dict, threads: int, log: Callable[[str], None] = print):
    """Import Keras on the run's backend with `threads` threads, deterministic ops, the run's
    seed and dtype policy; returns (keras, tf), tf None on the JAX backend."""
    if run_backend(run) == "jax":
        return _set_up_jax(run, threads, log), None
    configure_threads(threads)
    with _job_imports():
        import keras
        import tensorflow as tf

        from cnnablate.training.gpu import configure_tensorflow

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
    # before any data: fail fast without the GPUs asked for; per-run memory cap when packed
    configure_tensorflow(tf, log)
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(int(run["seed"]))
    # always set: the policy is global, a float32 run after a mixed one in one process stays float32
    keras.mixed_precision.set_dtype_policy(run["train"].get("precision", "float32"))
    return keras, tf


def _set_up_jax(run: dict, threads: int, log: Callable[[str], None]):
    """`set_up` on Keras's JAX backend (XLA: deterministic with backend.DETERMINISM_FLAG on a
    GPU, and on the CPU as it is); returns keras."""
    prepare_jax(threads, log)
    with _job_imports(SKIPPED_IMPORTS_JAX):
        import jax
        import keras

    configure_jax(jax, log)  # before any data: fail fast without the GPUs asked for
    keras.utils.set_random_seed(int(run["seed"]))
    keras.mixed_precision.set_dtype_policy(run["train"].get("precision", "float32"))
    log(f"backend: keras {keras.__version__} on jax {jax.__version__} "
        f"({', '.join(sorted({d.platform for d in jax.devices()}))})")
    return keras


def load_data(run: dict, data_dir: str | Path, log: Callable[[str], None]) -> RunData:
    """The run's partition of the prepared dataset (cnnablate.data.partition: the prepared
    split, or one drawn for the run's seed) at its image size, limited to its max_*_images."""
    if run_backend(run) == "jax":
        from cnnablate.training.numpy_feed import NumpySplit as Split
    else:
        from cnnablate.training.pipeline import Split

    t_start = time.perf_counter()
    meta = load_meta(data_dir)
    size, train = int(run["image_size"]), run["train"]
    files = {name: load_prepared(data_dir, name) for name in SPLITS}
    arrays, partition = load_partition(files, run.get("partition"), run["dataset"],
                                       int(run["seed"]))
    splits = {
        name: Split.load(
            *arrays[name],
            image_size=size,
            channels=3,
            limit=_limit(train, name),
        )
        for name in SPLITS
    }
    log(
        f"data: {meta['name']} train={len(splits['train'])} val={len(splits['val'])} "
        f"test={len(splits['test'])} at {size}x{size} ({time.perf_counter() - t_start:.1f}s); "
        f"partition {partition['mode']} {partition['id']}"
    )
    return RunData(meta, splits, partition, {name: len(files[name][1]) for name in SPLITS})


def _limit(train: dict, split: str) -> int | None:
    return train.get("max_train_images" if split == "train" else "max_eval_images")


def headline_predictions(feed: Feed, run: dict, data: RunData) -> np.ndarray:
    """predictions.npy: for a run whose headline is on a fixed test set
    (`partition.saves_predictions`), the predicted class of every image of the prepared test
    split, in its order (NOT_EVALUATED where `max_eval_images` left an image out); else an
    empty array (a test set drawn per seed: its sampling is in the seeds' spread already)."""
    if not saves_predictions(run):
        return np.zeros(0, dtype=PREDICTIONS_DTYPE)
    n = data.prepared_sizes["test"]
    out = np.full(n, NOT_EVALUATED, dtype=PREDICTIONS_DTYPE)
    kept = subset_indices(n, _limit(run["train"], "test"))
    predicted = feed.predict("test", int(run["train"]["batch_size"]))
    out[np.arange(n) if kept is None else kept] = predicted
    return out


def build_and_compile(keras, run: dict, data: RunData, log: Callable[[str], None]):
    """The run's model, compiled with its optimizer and a from-logits loss."""
    from cnnablate.zoo.models import build_model

    size, train = int(run["image_size"]), run["train"]
    model = build_model(
        run["model"]["name"],
        (size, size, 3),
        data.meta["num_classes"],
        activation=run["activation"],
        norm=run["norm"],
        init=run["init"],
        **{k: v for k, v in run["model"].items() if k != "name"},
    )
    steps = data.splits["train"].steps_per_epoch(int(train["batch_size"]))
    model.compile(
        optimizer=_make_optimizer(keras, train, steps * int(train["epochs"])),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=METRICS,
    )
    log(f"model: {run['model']['name']} params={model.count_params()}")
    return model


def input_feed(model, run: dict, data: RunData, log: Callable[[str], None]) -> Feed:
    """What `fit` runs on (a cnnablate.training.device.Feed): with `train.data_on_device` (auto:
    when the three splits fit `device_budget_bytes()`) the splits placed on the device and a
    `DeviceTrainer` around `model` that makes every batch there; else `model` on tf.data.
    On the JAX backend: `model` on numpy batches (cnnablate.training.numpy_feed)."""
    if run_backend(run) == "jax":
        from cnnablate.training.numpy_feed import NumpyFeed

        log("input: numpy batches from the host (keras.utils.PyDataset; JAX backend)")
        return NumpyFeed(model, data.splits)
    from cnnablate.training.device import make_feed, splits_nbytes

    setting = run["train"].get("data_on_device", "auto")
    feed = make_feed(model, data.splits, setting, run["train"].get("augment", "none"), METRICS)
    where = f"on {feed.device.device}" if feed.on_device else "tf.data from the host"
    log(f"input: {where} ({splits_nbytes(data.splits) / 2**20:.1f} MB; data_on_device: {setting})")
    return feed


def fit_with_resume(
    keras, model, run: dict, feed: Feed, work: Path, log: Callable[[str], None],
    stop_after: int | None = None, lineage: str | None = None,
) -> tuple[list[dict], float]:
    """Train `model` to the run's epochs on `feed` (`input_feed`: `fit` runs on `feed.model`,
    `model` itself or its DeviceTrainer), resuming from the epoch backup in `work` if there is
    one; returns (history rows as `history_rows` makes them, seconds spent fitting now).

    `stop_after`: stop after that epoch (a halving rung, issue #31); everything an epoch
    computes (its batches, the learning-rate schedule over the run's epochs) stays the run's,
    so a run stopped there and continued later equals one trained straight through."""
    train, seed = run["train"], int(run["seed"])
    bs, epochs = int(train["batch_size"]), int(train["epochs"])
    target = min(epochs, int(stop_after)) if stop_after else epochs
    work.mkdir(parents=True, exist_ok=True)
    partial_history = work / layout.HISTORY
    first_epoch = _resume_epoch(work, run_backend(run), lineage, target)
    _trim_history(partial_history, first_epoch)
    if first_epoch:
        log(f"resuming after epoch {first_epoch} from {work}")
    elif (work / "backup" / BACKUP_STATE).exists():
        log(f"not resuming: the backup in {work} was saved by another Keras backend, run "
            "config or code, or holds more epochs than this job trains to")

    _build_before_fit(feed.model, feed.pixels("val", bs))
    if first_epoch:
        _restore_backup(work / "backup", model)

    class EpochBackup(keras.callbacks.Callback):
        # Last: the epoch's history row is written before the backup that counts it. The
        # run's model, not `self.model` (a DeviceTrainer shares its variables and optimizer).
        def on_epoch_end(self, epoch, logs=None):
            _save_backup(work / "backup", model, epoch + 1, lineage)

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs["seconds"] = time.perf_counter() - self._t0
            shown = " ".join(f"{k}={logs[k]:.4f}" for k in HISTORY_COLUMNS[1:] if k in logs)
            log(f"epoch {epoch + 1}/{epochs} {shown}")

    callbacks = [
        stop_on_non_finite_loss(keras),
        EpochClock(),
        keras.callbacks.CSVLogger(str(partial_history), append=True),
        *monitor.watch_callbacks(keras, run, work, first_epoch),  # heartbeat, TensorBoard
        EpochBackup(),
    ]
    t_fit = time.perf_counter()
    if first_epoch < target:
        feed.model.fit(
            feed.train(bs, seed, first_epoch, target, augment=train.get("augment", "none")),
            validation_data=feed.eval("val", bs),
            epochs=target,
            initial_epoch=first_epoch,
            steps_per_epoch=feed.splits["train"].steps_per_epoch(bs),
            # the feed's order is the run's (a PyDataset would otherwise be reshuffled by
            # batch with Python's `random`, whose state a resumed run does not have)
            shuffle=False,
            callbacks=callbacks,
            verbose=0,
        )
    return history_rows(_read_history(partial_history)), time.perf_counter() - t_fit


def stop_on_non_finite_loss(keras):
    """A callback that stops training after an epoch whose mean loss is NaN or infinite (the
    run diverged: `summarize`). Keras's `TerminateOnNaN` checks every batch, and a callback
    with a per-batch hook makes Keras's callbacks synchronous on JAX (CallbackList: async
    dispatch only where no callback overrides the batch-end hooks): the host would wait for
    every step's loss before dispatching the next step. A NaN batch makes the epoch's mean
    loss NaN, so the run stops after the same epoch and writes the same history rows; the
    rest of that epoch trains on already non-finite weights."""

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    return StopOnNonFiniteLoss()


def history_rows(csv_rows: list[dict]) -> list[dict]:
    """CSVLogger's rows (0-based epochs, text) as 1-based epochs and floats (None: not finite)."""
    return [
        {"epoch": int(r["epoch"]) + 1, **{k: _finite(r.get(k)) for k in HISTORY_COLUMNS[1:]}}
        for r in csv_rows
    ]


def summarize(history: list[dict], epochs: int) -> dict:
    """What a run's history says: completed or diverged, the best and the last epoch.

    A run diverged when a loss is not finite or it stopped before `epochs`
    (`stop_on_non_finite_loss`);
    the best epoch is the one of highest validation accuracy (the first on ties)."""
    diverged = len(history) < epochs or any(
        h["loss"] is None or h["val_loss"] is None for h in history
    )
    valid = [h for h in history if h["val_accuracy"] is not None]
    best = max(valid, key=lambda h: h["val_accuracy"]) if valid else None
    last = history[-1] if history else {}
    return {
        "status": "diverged" if diverged else "completed",
        "epochs_completed": len(history),
        "diverged_epoch": next((h["epoch"] for h in history if h["loss"] is None), None)
        if diverged
        else None,
        "best_val_accuracy": best["val_accuracy"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_val_accuracy": last.get("val_accuracy"),
        "final_val_loss": last.get("val_loss"),
        "final_train_accuracy": last.get("accuracy"),
        "seconds_per_epoch": round(
            sum(h["seconds"] or 0.0 for h in history) / max(1, len(history)), 4
        ),
    }


def write_outputs(paths: RunPaths, model, history: list[dict], metrics: dict,
                  predictions: np.ndarray | None = None, keep_state: bool = False) -> None:
    """The run's outputs, each renamed into place, metrics.json last (it marks a run done);
    then the resume state goes (`keep_state`: a halving rung's, which the next rung continues
    from)."""
    if paths.model is not None:
        with atomic_path(paths.model) as tmp:
            model.save(tmp)
    with atomic_path(paths.predictions_file) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.zeros(0, PREDICTIONS_DTYPE) if predictions is None else predictions)
    with atomic_path(paths.history) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        for h in history:
            writer.writerow({k: ("nan" if h[k] is None else h[k]) for k in HISTORY_COLUMNS})
    write_json_atomic(paths.metrics, metrics)
    if not keep_state:
        shutil.rmtree(paths.work_dir, ignore_errors=True)


def train_run(
    run: dict,
    data_dir: str | Path,
    paths: RunPaths,
    threads: int = 1,
    log: Callable[[str], None] = print,
    stop_after: int | None = None,
    code: str | None = None,
) -> dict:
    """Train one run as `run` (a resolved run config) says and write its three outputs.

    `stop_after`: a halving rung (issue #31): train only to that epoch, keep the resume
    state for the next rung, and record `rung_epochs` in metrics.json; the run config (and
    its `config_hash`) stays the run's own, so the next rung continues it. `code`: the job's
    code fingerprint; with the config hash it is the lineage a kept state must match."""
    backend = run_backend(run)
    keras, tf = set_up(run, threads, log)  # may fail fast (no GPU): nothing written yet
    monitor.write_heartbeat(paths.work_dir, None, int(run["train"]["epochs"]))  # for `status`
    from cnnablate.training import actstats
    from cnnablate.training.provenance import cpu_model, git_commit, machine, package_versions

    started_at = time.time()
    data = load_data(run, data_dir, log)
    model = build_and_compile(keras, run, data, log)
    feed = input_feed(model, run, data, log)
    epochs = int(run["train"]["epochs"])
    target = min(epochs, int(stop_after)) if stop_after else epochs
    lineage = config_hash([run, code])
    history, train_seconds = fit_with_resume(keras, model, run, feed, paths.work_dir, log,
                                             stop_after=target, lineage=lineage)

    bs = int(run["train"]["batch_size"])
    test_loss, test_acc = feed.model.evaluate(feed.eval("test", bs), verbose=0)
    predictions = headline_predictions(feed, run, data)
    stats_x = np.asarray(feed.pixels("val", STATS_IMAGES)[0])
    metrics = {
        "study": run["study"],
        "variant": run["variant"],
        "seed": int(run["seed"]),
        **summarize(history, target),
        **({"rung_epochs": target} if target < epochs else {}),
        "test_accuracy": _finite(test_acc),
        "test_loss": _finite(test_loss),
        "partition": data.partition,
        "parameters": int(model.count_params()),
        "train_seconds": round(train_seconds, 3),
        "device": device_names(backend, tf) or [f"CPU: {cpu_model()}"],
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "started_at": started_at,
        "finished_at": time.time(),
        "run_config": {**run, "threads": threads},
        "activation_stats": actstats.activation_statistics(model, stats_x),
        "activation_curve": activation_curve(run["activation"]),
        "provenance": {
            "packages": package_versions(),
            "git_commit": git_commit(),
            "config_hash": config_hash(run),
            "dataset": data.meta["name"],
            "dataset_checksum": data.meta["checksum"],
            "machine": machine(),
            "keras_backend": keras.backend.backend(),
        },
    }
    write_outputs(paths, model, history, metrics, predictions, keep_state=target < epochs)
    log(f"done: status={metrics['status']} best_val_accuracy={metrics['best_val_accuracy']}")
    return metrics
