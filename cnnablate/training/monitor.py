"""What a training job leaves for people watching it: a heartbeat and TensorBoard logs.

- `.resume/heartbeat.json` (pid, host, epoch, epochs, time), written when the job starts, when
  fitting starts and after every epoch, so that `python -m cnnablate status` can tell a
  running job from a killed one (`cnnablate.workflow.status`); it goes with `.resume/` when the run
  completes.
- `tensorboard/` in the run folder (`train/` and `validation/` event files, one scalar per
  metric per epoch), written live, so `tensorboard --logdir results/runs/<study>` shows every
  variant and seed of a study while it trains. A resumed run first drops the events of the
  epochs its backup does not hold, so a killed attempt leaves no duplicate or orphan points.

On Keras's JAX backend the same scalars (same tags and folders) are written by the tensorboard
package's numpy-only writer (`_scalar_callback`), and the events of a killed attempt are
dropped with its record reader and writer: no TensorFlow there.

Plain Python at import time (the status command imports it); TensorFlow is only touched by
the functions a training job calls.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from cnnablate.base.atomic import atomic_path, write_json_atomic
from cnnablate.base.layout import HEARTBEAT, TENSORBOARD_DIR


def write_heartbeat(work_dir: Path, epoch: int | None, epochs: int) -> None:
    """`epoch` epochs are done of `epochs` (None: not known yet, the job is starting); this
    process (pid, host) is training them."""
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        Path(work_dir) / HEARTBEAT,
        {"pid": os.getpid(), "host": socket.gethostname(), "epoch": epoch, "epochs": epochs,
         "time": time.time()},
    )


def _keep_saved_epochs(log_dir: Path, first_epoch: int) -> None:
    """Rewrite every event file under `log_dir` without the summaries of epochs from
    `first_epoch` on: those of a killed attempt that the backup does not hold (they are
    trained again, and logged again). The tensorboard package's own record reader and writer:
    no TensorFlow needed (the JAX backend), and a record cut short by a kill ends the file
    instead of failing the resume."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        kept = []
        for raw in RawEventFileLoader(str(path)).Load():
            event = event_pb2.Event.FromString(raw)
            if not event.HasField("summary") or event.step < first_epoch:
                kept.append(raw)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            writer = RecordWriter(fh)
            for raw in kept:
                writer.write(raw)


def _scalar_callback(keras, log_dir: Path):
    """A Keras callback writing what `EpochTensorBoard` writes (the same tags, in train/ and
    validation/) with the tensorboard package's numpy-only writer: Keras's TensorBoard
    callback needs TensorFlow's summary ops, which the JAX backend does not have."""
    from tensorboard.summary import Writer

    class EpochScalars(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self._writers = {"train": Writer(str(log_dir / "train")),
                             "validation": Writer(str(log_dir / "validation"))}

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            optimizer = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
            logs["learning_rate"] = keras.ops.convert_to_numpy(optimizer.learning_rate)
            for name, value in logs.items():
                where = "validation" if name.startswith("val_") else "train"
                tag = f"epoch_{name[4:] if where == 'validation' else name}"
                self._writers[where].add_scalar(tag, float(value), step=epoch)
            for writer in self._writers.values():  # on disk before the epoch's backup
                writer.flush()

        def on_train_end(self, logs=None):
            for writer in self._writers.values():
                writer.close()

    return EpochScalars()


def watch_callbacks(keras, run: dict, work_dir: Path, first_epoch: int) -> list:
    """Keras callbacks for the heartbeat and (when `train.tensorboard`) TensorBoard.

    Put them before the epoch backup: an epoch's events are written before the backup that
    counts it, so a kill between the two only leaves events that `_keep_saved_epochs` drops.
    """
    work_dir = Path(work_dir)
    epochs = int(run["train"]["epochs"])

    class Heartbeat(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            write_heartbeat(work_dir, first_epoch, epochs)

        def on_epoch_end(self, epoch, logs=None):
            write_heartbeat(work_dir, epoch + 1, epochs)

    callbacks = [Heartbeat()]
    if run["train"].get("tensorboard", True):
        log_dir = work_dir.parent / TENSORBOARD_DIR
        if first_epoch == 0:
            shutil.rmtree(log_dir, ignore_errors=True)  # a fresh run owns no old events
        elif log_dir.exists():
            _keep_saved_epochs(log_dir, first_epoch)
        if keras.backend.backend() != "tensorflow":
            callbacks.insert(0, _scalar_callback(keras, log_dir))
            return callbacks

        class EpochTensorBoard(keras.callbacks.TensorBoard):
            # Keras's no-op hooks in place of TensorBoard's batch hooks (which only count
            # batches and log batch scalars, nothing at update_freq="epoch"; a callback with
            # batch hooks of its own makes Keras call them synchronously every step, with the
            # step's logs converted to Python numbers) and of its validation hooks (which log
            # the validation metrics a second time, against iterations: ~33 ms of CPU an
            # epoch, benchmarks/tensorboard_cost.py). Epoch scalars are all it writes.
            on_train_batch_begin = keras.callbacks.Callback.on_train_batch_begin
            on_train_batch_end = keras.callbacks.Callback.on_train_batch_end
            on_test_batch_begin = keras.callbacks.Callback.on_test_batch_begin
            on_test_batch_end = keras.callbacks.Callback.on_test_batch_end
            on_test_begin = keras.callbacks.Callback.on_test_begin
            on_test_end = keras.callbacks.Callback.on_test_end

            def on_epoch_end(self, epoch, logs=None):
                super().on_epoch_end(epoch, logs)
                # On disk before the epoch's backup, so a resume never loses a saved epoch's
                # points (the writer would otherwise hold them up to two minutes).
                for writer in self._writers.values():
                    writer.flush()

        # Epoch scalars only: no graph, no weight histograms, no profiling (the hot loop).
        callbacks.insert(0, EpochTensorBoard(
            str(log_dir), histogram_freq=0, write_graph=False, write_images=False,
            update_freq="epoch", profile_batch=0,
        ))
    return callbacks
