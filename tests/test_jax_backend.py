"""Keras's JAX backend (`train: {backend: jax}`): choosing it, the numpy input feed's pixels
against TensorFlow's, a run that never imports TensorFlow and resumes bit-identically, and a
study end to end through Snakemake with the same files and columns as on TensorFlow."""

from __future__ import annotations

import copy
import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnablate.training import backend, numpy_feed
from cnnablate.workflow.config import ConfigError, resolve_runs
from tests import tiny
from tests.workflow import copy_prepared, snakemake, write_config

ROOT = Path(__file__).resolve().parents[1]
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                               reason="jax is not installed (requirements-jax.txt)")

TINY = tiny.config(j=tiny.study(
    {"epochs": 2, "batch_size": 64, "backend": "jax"}, image_size=12,
    model={"width": 0.25, "bn_momentum": 0.9, "dropout": False},
    variants={"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
))


def _config(**train) -> dict:
    config = copy.deepcopy(TINY)
    study_train = config["studies"]["j"]["train"]
    study_train.update(train)
    for key in [k for k, v in study_train.items() if v is None]:
        del study_train[key]
    return config


# ---------------------------------------------------------------- choosing the backend


@pytest.mark.parametrize(("configured", "env", "expected"), [
    ("jax", None, "jax"),
    ("tensorflow", "jax", "tensorflow"),  # the config wins
    (None, "jax", "jax"),
    (None, "tensorflow", "tensorflow"),
    (None, None, "tensorflow"),
])
def test_backend_from_config_else_environment(monkeypatch, configured, env, expected):
    if env is None:
        monkeypatch.delenv("KERAS_BACKEND", raising=False)
    else:
        monkeypatch.setenv("KERAS_BACKEND", env)
    runs = resolve_runs(_config(backend=configured))
    assert {run["train"]["backend"] for run in runs} == {expected}


def test_unknown_keras_backend_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(ConfigError, match=r"studies\.j\.variants\.relu\.train\.backend: "
                                          r"KERAS_BACKEND: 'torch'"):
        resolve_runs(_config(backend=None))
    monkeypatch.setenv("KERAS_BACKEND", "torch")  # a config that says which: no error
    assert resolve_runs(_config(backend="jax"))


def test_data_on_device_true_is_refused_on_jax():
    with pytest.raises(ConfigError, match=r"train\.data_on_device: true .* jax backend"):
        resolve_runs(_config(data_on_device=True))


def test_a_backend_outside_the_schema_is_refused():
    with pytest.raises(ConfigError, match=r"train\.backend"):
        resolve_runs(_config(backend="torch"))


def test_xla_flags_add_only_what_is_missing():
    flags = backend._xla_flags("--xla_gpu_deterministic_ops=false --foo=1", threads=2)
    assert flags.split() == ["--xla_gpu_deterministic_ops=false", "--foo=1"]  # the user's kept
    flags = backend._xla_flags("", threads=1).split()
    assert flags == ["--xla_gpu_deterministic_ops=true", "--xla_cpu_multi_thread_eigen=false",
                     "intra_op_parallelism_threads=1"]


def test_packed_jax_runs_get_the_tensorflow_paths_memory_share():
    from cnnablate.training.gpu import GPUMemory

    h100 = GPUMemory(total_mb=81920, free_mb=81920, cc_major=9, source="test")
    assert backend.jax_memory_fraction(1.0, h100) is None
    assert backend.jax_memory_fraction(0.25, None) is None
    # a quarter of 81920 MB less TensorFlow's reserve on a compute capability 9 GPU, 1800 MB
    fraction = backend.jax_memory_fraction(0.25, h100)
    assert fraction == pytest.approx((81920 / 4 - 1800) / 81920, abs=1e-3)
    # half the GPU already taken by others: the cap comes from what is free
    busy = GPUMemory(total_mb=81920, free_mb=12000, cc_major=9, source="test")
    assert backend.jax_memory_fraction(0.25, busy) == pytest.approx((12000 - 1800) / 81920,
                                                                    abs=1e-3)


PREPARE = """
import json, os, sys
from cnnablate.training.backend import prepare_jax
prepare_jax(int(sys.argv[1]), log=lambda m: print(m, file=sys.stderr))
assert "keras" not in sys.modules and "jax" not in sys.modules
print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(("XLA", "KERAS", "JAX"))}))
"""


def _prepared_env(threads: int, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("XLA", "KERAS", "JAX", "CNNABLATE", "XDG_CACHE"))}
    proc = subprocess.run([sys.executable, "-c", PREPARE, str(threads)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT,
                          env={**base, "PYTHONPATH": str(ROOT), **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_prepare_jax_sets_backend_flags_and_cache_before_keras(tmp_path):
    env = _prepared_env(1, HOME=str(tmp_path))
    assert env["KERAS_BACKEND"] == "jax"
    assert "--xla_gpu_deterministic_ops=true" in env["XLA_FLAGS"].split()
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / ".cache" / "cnnablate" / "jax")
    assert "XLA_CLIENT_MEM_FRACTION" not in env  # one run per GPU: JAX's default
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env
    mine = _prepared_env(2, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "c"), XLA_FLAGS="--a=1")
    assert mine["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "c")
    assert mine["XLA_FLAGS"].split() == ["--a=1", "--xla_gpu_deterministic_ops=true"]


def test_prepare_jax_caps_each_packed_run():
    env = _prepared_env(1, CNNABLATE_RUNS_PER_GPU="4", CNNABLATE_GPU_MEMORY_MB="81920",
                        CUDA_VISIBLE_DEVICES="0")
    # memory from the variable (compute capability unknown: the largest reserve, 1800 MB), under
    # the name jaxlib 0.10 reads; never both names (jaxlib refuses to start with both)
    assert float(env["XLA_CLIENT_MEM_FRACTION"]) == pytest.approx(
        (81920 / 4 - 1800) / 81920, abs=1e-3)
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    for name in ("XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_CLIENT_MEM_FRACTION"):
        mine = _prepared_env(1, CNNABLATE_RUNS_PER_GPU="4", CNNABLATE_GPU_MEMORY_MB="81920",
                             CUDA_VISIBLE_DEVICES="0", **{name: "0.1"})
        fractions = {k: v for k, v in mine.items() if k.endswith("MEM_FRACTION")}
        assert fractions == {name: "0.1"}  # the user's value is kept, under their name only


def _prepare_fails(**env: str) -> str:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("XLA", "KERAS", "JAX", "CNNABLATE", "SLURM"))}
    proc = subprocess.run(
        [sys.executable, "-c", "from cnnablate.training.backend import prepare_jax\n"
         "try:\n    prepare_jax(1, log=lambda m: None)\n"
         "except Exception as e:\n    print(type(e).__name__, e); raise SystemExit(3)\n"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **env})
    assert proc.returncode == 3, proc.stdout + proc.stderr[-2000:]
    return proc.stdout.strip()


def test_a_packed_jax_run_without_enough_free_memory_fails_in_one_line(tmp_path):
    """4 runs on a 16 GB GPU of which 1 000 MB are free: TensorFlow's cap would be 1000 - 1050
    (its reserve on compute capability 7) = -50 MB; JAX was given a fraction of -0.003."""
    from cnnablate.training.gpu import GPUMemory, GPUUnavailable
    from tests.test_gpu import fake_nvidia_smi

    busy = GPUMemory(total_mb=16384, free_mb=1000, cc_major=7, source="test")
    with pytest.raises(GPUUnavailable, match=r"leaves this run -50 MB"):
        backend.jax_memory_fraction(0.25, busy)
    fake_nvidia_smi(tmp_path / "bin", [(16384, 1000, "7.5")])
    line = _prepare_fails(PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
                          CNNABLATE_RUNS_PER_GPU="4", CUDA_VISIBLE_DEVICES="0")
    assert line.startswith("GPUUnavailable gpu: GPU 0 leaves this run -50 MB") and "\n" not in line
    assert "lower runs_per_gpu" in line


def test_both_memory_fraction_names_set_is_refused_in_one_line():
    line = _prepare_fails(XLA_CLIENT_MEM_FRACTION="0.2", XLA_PYTHON_CLIENT_MEM_FRACTION="0.3")
    assert line.startswith("BackendError XLA_CLIENT_MEM_FRACTION='0.2' and "
                           "XLA_PYTHON_CLIENT_MEM_FRACTION='0.3' are both set")
    assert "\n" not in line


@pytest.mark.parametrize(("version", "name"), [
    ("0.10.2", "XLA_CLIENT_MEM_FRACTION"), ("0.11.0", "XLA_CLIENT_MEM_FRACTION"),
    ("1.0.0", "XLA_CLIENT_MEM_FRACTION"), (None, "XLA_CLIENT_MEM_FRACTION"),
    ("0.4.30", "XLA_PYTHON_CLIENT_MEM_FRACTION"), ("0.9.9", "XLA_PYTHON_CLIENT_MEM_FRACTION"),
])
def test_the_fraction_goes_under_the_name_the_installed_jaxlib_reads(version, name):
    assert backend.fraction_variable(version) == name


def test_a_job_seeing_every_gpu_does_not_preallocate_them(tmp_path):
    """Under SLURM at a site that does not confine jobs to their GPUs, CUDA_VISIBLE_DEVICES is
    unset: JAX would preallocate 75 % of every GPU of the node, other jobs' GPUs included."""
    env = _prepared_env(1, SLURM_JOB_ID="7", CNNABLATE_GPU_REQUEST="1",
                        CNNABLATE_RUNS_PER_GPU="1", PATH=str(tmp_path))  # no nvidia-smi
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert not [k for k in env if k.endswith("MEM_FRACTION")]  # alone: not capped
    mine = _prepared_env(1, SLURM_JOB_ID="7", CNNABLATE_GPU_REQUEST="1",
                         XLA_PYTHON_CLIENT_PREALLOCATE="true")
    assert mine["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"  # the user's choice is kept
    given = _prepared_env(1, SLURM_JOB_ID="7", CNNABLATE_GPU_REQUEST="1",
                          CUDA_VISIBLE_DEVICES="2")
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in given  # its own GPU: JAX's default


def test_the_compilation_cache_is_bounded_where_jax_can_evict(tmp_path):
    """JAX evicts least recently used entries past jax_compilation_cache_max_size, with the
    filelock package (jax/_src/lru_cache.py); without it a bound would stop the cache."""
    stub = tmp_path / "site" / "filelock"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    code = ("import os, sys; from cnnablate.training.backend import prepare_jax\n"
            "prepare_jax(1, log=lambda m: print(m, file=sys.stderr))\n"
            "import jax; print(jax.config.jax_compilation_cache_max_size)\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("XLA", "KERAS", "JAX"))}
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, cwd=ROOT, env={**base, "PYTHONPATH": os.pathsep.join(
                               [str(ROOT), str(tmp_path / "site")])})
    assert found.returncode == 0, found.stderr[-2000:]
    assert int(found.stdout.split()[-1]) == 4 * 2**30  # JAX reads the bound prepare_jax set
    if importlib.util.find_spec("filelock") is None:  # this venv: none, so unbounded and said
        bare = subprocess.run([sys.executable, "-c", code.replace("import jax; print(jax.config."
                                                                  "jax_compilation_cache_max_size)",
                                                                  "print('JAX_COMPILATION_CACHE_"
                                                                  "MAX_SIZE' in os.environ)")],
                              capture_output=True, text=True, timeout=120, cwd=ROOT,
                              env={**base, "PYTHONPATH": str(ROOT)})
        assert bare.returncode == 0, bare.stderr[-2000:]
        assert bare.stdout.split()[-1] == "False"
        assert "compilation cache unbounded" in bare.stderr


def test_prepare_jax_refuses_a_process_whose_keras_has_another_backend():
    import keras  # this test process's Keras: TensorFlow's

    assert keras.backend.backend() != "jax"
    with pytest.raises(backend.BackendError, match="already imported with the"):
        backend.prepare_jax(1)


@needs_jax
def test_jax_run_asking_for_a_gpu_that_jax_does_not_see_fails_fast(monkeypatch):
    import jax

    from cnnablate.training.gpu import ENV_ALLOW_CPU, ENV_REQUEST, GPUUnavailable

    if backend.jax_gpus(jax)[0]:
        pytest.skip("this machine has a GPU that JAX sees")
    monkeypatch.setenv(ENV_REQUEST, "1")
    monkeypatch.setenv(ENV_ALLOW_CPU, "0")
    lines = []
    with pytest.raises(GPUUnavailable, match=r"gpu: 1 GPU\(s\) requested, JAX .* sees 0 .*"
                                             r"requirements-jax-gpu\.txt"):
        backend.configure_jax(jax, lines.append)
    assert len(lines) == 1
    monkeypatch.setenv(ENV_ALLOW_CPU, "1")
    assert backend.configure_jax(jax, lines.append) == []
    assert lines[-1].startswith("WARNING gpu: 1 GPU(s) requested")


@needs_jax
def test_the_jax_device_probe_runs_a_conv_and_a_gather_and_fails_in_one_line():
    import jax

    lines = []
    backend.check_jax_kernels(jax, jax.devices("cpu"), lines.append)
    assert len(lines) == 1
    assert lines[0].startswith(f"gpu: {jax.devices('cpu')[0]} ran a test conv and gather")

    class NoDevice:  # what jax.device_put cannot place anything on
        def __str__(self):
            return "cuda:7"

    lines.clear()
    from cnnablate.training.gpu import GPUUnavailable

    with pytest.raises(GPUUnavailable) as failed:
        backend.check_jax_kernels(jax, [NoDevice()], lines.append)
    message = str(failed.value)
    assert lines == [message] and "\n" not in message
    assert message.startswith("gpu: a test conv and gather on cuda:7 failed (")
    assert f"jax {jax.__version__}, jaxlib " in message and "NVIDIA driver " in message
    assert "525.60.13" in message


def test_the_nan_check_stops_after_a_non_finite_epoch_without_a_batch_hook():
    import keras
    from keras.src import utils

    from cnnablate.training.train import stop_on_non_finite_loss

    callback = stop_on_non_finite_loss(keras)
    for hook in ("on_batch_end", "on_train_batch_end", "on_train_batch_begin"):
        assert utils.is_default(getattr(callback, hook)), hook  # Keras stays asynchronous

    class Model:  # what a callback sees of the model: its stop flag
        stop_training = False

    callback.set_model(Model())
    callback.on_epoch_end(0, {"loss": 2.3, "val_loss": float("nan")})
    assert callback.model.stop_training is False
    for bad in (float("nan"), float("inf"), -float("inf")):
        callback.model.stop_training = False
        callback.on_epoch_end(1, {"loss": bad})
        assert callback.model.stop_training is True, bad


# ---------------------------------------------------------------- the numpy feed's pixels


@pytest.mark.parametrize(("native", "size"), [
    (8, 12), (8, 24), (8, 9), (32, 32), (32, 24), (32, 16), (32, 20), (28, 32), (32, 224),
    (64, 24), (256, 224),
])
def test_numpy_resize_is_tensorflows_bit_for_bit(native, size):
    tf = pytest.importorskip("tensorflow")
    from cnnablate.training.pipeline import _resize_uint8

    rng = np.random.default_rng(native * 1000 + size)
    images = rng.integers(0, 256, (6 if native > 64 else 40, native, native, 3), dtype=np.uint8)
    expected = _resize_uint8(tf.constant(images), size, 3).numpy()
    assert np.array_equal(numpy_feed.resize_uint8(images, size, 3), expected)


def test_numpy_split_has_the_tensorflow_splits_examples_and_pixels(tmp_path):
    pytest.importorskip("tensorflow")
    from cnnablate.data.prepare import prepare_dataset
    from cnnablate.data.store import load_prepared
    from cnnablate.training.pipeline import Split

    prepare_dataset("digits", {"source": "sklearn_digits"}, tmp_path)
    images, labels = load_prepared(tmp_path, "train")  # 8x8 grey
    for presize in (True, False):  # resized once, or per batch
        cache = 1 << 30 if presize else 0
        mine = numpy_feed.NumpySplit.load(images, labels, 12, limit=300, cache_bytes=cache)
        theirs = Split.load(images, labels, 12, limit=300, cache_bytes=cache)
        assert mine.presized is theirs.presized is presize
        assert np.array_equal(mine.labels, theirs.labels)
        x, y = mine.batch(np.arange(300))
        tx, ty = next(iter(theirs.eval_dataset(300)))
        assert np.array_equal(y, ty.numpy())
        assert np.array_equal(x, tx.numpy())  # same scaled float32 pixels


def test_training_batches_are_a_function_of_seed_and_epoch():
    rng = np.random.default_rng(0)
    split = numpy_feed.NumpySplit.load(rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8),
                                       rng.integers(0, 10, 50), 8)
    whole = numpy_feed.TrainBatches(split, 16, seed=3, first_epoch=0, epochs=3,
                                    augment_mode="flip_crop")
    resumed = numpy_feed.TrainBatches(split, 16, seed=3, first_epoch=1, epochs=3,
                                      augment_mode="flip_crop")
    steps = split.steps_per_epoch(16)
    assert len(whole) == 3 * steps and len(resumed) == 2 * steps
    for i in range(len(resumed)):  # what a run resumed after epoch 1 sees is what it would see
        for mine, theirs in zip(resumed[i], whole[steps + i], strict=True):
            assert np.array_equal(mine, theirs)
    epoch0 = np.concatenate([whole[i][1] for i in range(steps)])
    assert sorted(epoch0) == sorted(split.labels)  # each example once per epoch
    assert not np.array_equal(whole[0][1], whole[steps][1])  # reshuffled per epoch


def test_augment_flips_and_crops_like_the_tensorflow_path():
    x = np.arange(2 * 6 * 6 * 1, dtype=np.float32).reshape(2, 6, 6, 1)
    flipped = numpy_feed.augment(x, (1, 2), "flip")
    for image, out in zip(x, flipped, strict=True):
        assert np.array_equal(out, image) or np.array_equal(out, image[:, ::-1])
    cropped = numpy_feed.augment(x, (1, 2), "flip_crop")
    assert cropped.shape == x.shape
    assert np.array_equal(numpy_feed.augment(x, (1, 2), "flip_crop"), cropped)  # pure
    assert np.array_equal(numpy_feed.augment(x, (1, 2), "none"), x)


# ---------------------------------------------------------------- runs without TensorFlow

# A training process with TensorFlow hidden from it, as on a JAX-only host: importing it
# raises. Phase "part" fits the first `epochs` of the run and stops with its backup in place (a
# killed job); phase "full" is the job itself (train_run), which also dumps the final weights.
TRAIN_WITHOUT_TF = r"""
import importlib.abc, json, sys
from pathlib import Path

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            raise ImportError(f"{name} is blocked by the test")

sys.meta_path.insert(0, NoTensorFlow())
import numpy as np
import cnnablate.training.train as T

phase, run, data_dir, run_dir = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
paths = T.RunPaths.in_dir(run_dir)
# Every CallbackList Keras makes, to read its async flag: the training fit's holds CSVLogger.
callback_lists, set_up = [], T.set_up

def recording_set_up(*args, **kwargs):
    keras, tf = set_up(*args, **kwargs)
    init = keras.callbacks.CallbackList.__init__

    def recording_init(self, *a, **k):
        init(self, *a, **k)
        callback_lists.append(self)

    keras.callbacks.CallbackList.__init__ = recording_init
    return keras, tf

T.set_up = recording_set_up
if phase == "part":
    keras, _ = T.set_up(run, 1)
    data = T.load_data(run, data_dir, print)
    model = T.build_and_compile(keras, run, data, print)
    feed = T.input_feed(model, run, data, print)
    T.fit_with_resume(keras, model, run, feed, paths.work_dir, print)
else:
    write_outputs = T.write_outputs

    def dump_weights(paths, model, history, metrics, *rest, **keys):
        np.savez(Path(run_dir) / "weights.npz", *[np.asarray(v) for v in model.variables])
        conv = next(layer for layer in model.layers if layer.name.endswith("_conv"))
        (Path(run_dir) / "trained.json").write_text(json.dumps({
            "compute_dtype": conv.compute_dtype, "optimizer": type(model.optimizer).__name__}))
        write_outputs(paths, model, history, metrics, *rest, **keys)

    T.write_outputs = dump_weights
    T.train_run(run, data_dir, paths, threads=1)
print("async_train:", json.dumps([lst._async_train for lst in callback_lists if any(
    type(c).__name__ == "CSVLogger" for c in lst.callbacks)]))
assert "tensorflow" not in sys.modules, "tensorflow was imported"
print("no tensorflow")
"""


def _train_without_tf(phase: str, run: dict, data_dir: Path, run_dir: Path,
                      cache: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_COMPILATION_CACHE_DIR": str(cache)}
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN_WITHOUT_TF, phase, json.dumps(run), str(data_dir),
         str(run_dir)], capture_output=True, text=True, timeout=900, cwd=ROOT, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.strip().endswith("no tensorflow")
    # JAX's persistent compilation cache works without TensorFlow (it warns on each failure)
    assert "persistent compilation cache entry" not in proc.stderr, proc.stderr[-2000:]
    assert any(Path(cache).rglob("*")), "nothing was cached"
    # Keras dispatched the fit's callbacks asynchronously: no callback of the run has a
    # per-batch hook, so the host never waits for a step's loss before the next step
    (flags,) = [line for line in proc.stdout.splitlines() if line.startswith("async_train:")]
    assert json.loads(flags.split(":", 1)[1]) == [True], flags
    return proc.stdout


def _history_without_seconds(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def _scalar_steps(event_dir: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return sorted(
        event.step for path in event_dir.glob("events.out.tfevents.*")
        for event in EventFileLoader(str(path)).Load()
        for value in event.summary.value if value.tag == tag
    )


@needs_jax
def test_jax_run_without_tensorflow_resumes_bit_identically(tmp_path):
    from cnnablate.data.prepare import prepare_dataset

    data_dir = tmp_path / "digits"
    prepare_dataset("digits", {"source": "sklearn_digits"}, data_dir)
    config = _config(epochs=2, max_train_images=256, max_eval_images=128, augment="flip_crop")
    config["studies"]["j"]["model"]["dropout"] = True  # random draws every step: RNG state
    run = next(r for r in resolve_runs(config) if r["variant"] == "relu")
    cache = tmp_path / "jax-cache"

    whole = tmp_path / "whole"
    _train_without_tf("full", run, data_dir, whole, cache)
    resumed = tmp_path / "resumed"
    first = copy.deepcopy(run)
    first["train"]["epochs"] = 1
    _train_without_tf("part", first, data_dir, resumed, cache)  # killed after epoch 1
    assert (resumed / ".resume" / "backup" / "state.npz").exists()
    assert not (resumed / "metrics.json").exists()
    log = _train_without_tf("full", run, data_dir, resumed, cache)
    assert "resuming after epoch 1" in log

    assert _history_without_seconds(resumed) == _history_without_seconds(whole)
    with np.load(whole / "weights.npz") as a, np.load(resumed / "weights.npz") as b:
        assert len(a.files) == len(b.files) > 0
        for name in a.files:
            assert np.array_equal(a[name], b[name]), name
    metrics = json.loads((resumed / "metrics.json").read_text())
    reference = json.loads((whole / "metrics.json").read_text())
    for key in ("best_val_accuracy", "test_accuracy", "test_loss", "activation_stats"):
        assert metrics[key] == reference[key], key
    assert metrics["provenance"]["keras_backend"] == "jax"
    assert {"jax", "jaxlib"} <= set(metrics["provenance"]["packages"])
    assert metrics["run_config"]["train"]["backend"] == "jax"
    # TensorBoard: each epoch once, the killed attempt's epoch-1 events replaced, not doubled
    for where, tag in (("train", "epoch_loss"), ("train", "epoch_learning_rate"),
                       ("validation", "epoch_accuracy")):
        assert _scalar_steps(resumed / "tensorboard" / where, tag) == [0, 1], (where, tag)


# ---------------------------------------------------------------- a study end to end


def _outputs(work: Path, study: str, trained_run: str) -> dict:
    """What a study leaves: its files (event file names, which hold a time and a pid, as
    "events"), the columns or keys of each table, and a trained run's files, columns, metrics
    keys and TensorBoard tags (`trained_run`: a run trained by this workflow, not copied from
    another study's: a copied run has no TensorBoard logs)."""
    def files(folder: Path) -> set[str]:
        return {str(p.relative_to(folder).parent / "events") if "tfevents" in p.name
                else str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}

    tables = work / "results" / "studies" / study
    run = work / "results" / "runs" / trained_run
    metrics = json.loads((run / "metrics.json").read_text())
    return {
        "study files": files(tables),
        "figures": files(work / "report" / "figures" / study),
        "run files": files(run),
        "report": (work / "report" / "index.html").exists(),
        "columns": {name: next(csv.reader(open(tables / name))) for name in
                    ("runs.csv", "summary.csv", "paired.csv")},
        "history": next(csv.reader(open(run / "history.csv"))),
        "metrics": sorted(metrics),
        "provenance": sorted(metrics["provenance"]),
        "tags": {where: sorted({tag for tag in ("epoch_loss", "epoch_accuracy",
                                                "epoch_learning_rate", "epoch_seconds")
                                if _scalar_steps(run / "tensorboard" / where, tag)})
                 for where in ("train", "validation")},
    }


def _backends(work: Path, study: str) -> set[str]:
    with open(work / "results" / "studies" / study / "runs.csv", newline="") as fh:
        return {row["backend"] for row in csv.DictReader(fh)}


@needs_jax
@pytest.mark.workflow
def test_study_on_jax_gives_the_files_and_columns_of_tensorflow(tmp_path, finished):
    """The session's finished workflow is the TensorFlow side: its study `tiny` (whose runs
    are copied from `acts`, trained there) run again on JAX, from the same prepared digits."""
    config = tiny.config(**{tiny.TINY_STUDY: tiny.FINISHED["studies"][tiny.TINY_STUDY]})
    config["studies"][tiny.TINY_STUDY]["train"] = {**tiny.TRAIN, "backend": "jax"}
    work = copy_prepared(finished.work, tmp_path / "jax")
    write_config(work / "config.yaml", config)
    # one job at a time: the second run finds what the first compiled in the cache (the eager
    # ops of building the model), 46 instead of 56 s of CPU for the two (BENCHMARKS.md §10)
    snakemake(work, "--cores", "1", env={"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")})

    mine = _outputs(work, tiny.TINY_STUDY, f"{tiny.TINY_STUDY}/relu/seed0")
    theirs = _outputs(finished.work, tiny.TINY_STUDY, "acts/relu/seed0")
    assert "trained_as" in json.loads(  # copied: the trained one is acts's
        (finished.work / "results/runs" / tiny.TINY_STUDY / "relu/seed0/metrics.json").read_text())
    assert mine == theirs
    assert _backends(work, tiny.TINY_STUDY) == {"jax"}
    assert _backends(finished.work, tiny.TINY_STUDY) == {"tensorflow"}
    for where, name in ((work, "jax"), (finished.work, "tensorflow")):
        html = (where / "report" / "index.html").read_text()
        assert f"Keras's <code>{name}</code> backend" in html
    assert mine["tags"]["train"] == ["epoch_accuracy", "epoch_learning_rate", "epoch_loss",
                                     "epoch_seconds"]


@needs_jax
@pytest.mark.parametrize(("precision", "compute", "optimizer"), [
    ("mixed_float16", "float16", "LossScaleOptimizer"),  # float16 needs loss scaling
])
def test_jax_run_in_mixed_precision(tmp_path, precision, compute, optimizer):
    from cnnablate.data.prepare import prepare_dataset

    data_dir = tmp_path / "digits"
    prepare_dataset("digits", {"source": "sklearn_digits"}, data_dir)
    config = _config(epochs=1, max_train_images=128, max_eval_images=64, precision=precision)
    run = resolve_runs(config)[0]
    _train_without_tf("full", run, data_dir, tmp_path / "run", tmp_path / "jax-cache")
    trained = json.loads((tmp_path / "run" / "trained.json").read_text())
    assert trained == {"compute_dtype": compute, "optimizer": optimizer}
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["final_val_loss"] is not None


def test_a_backup_from_another_backend_is_not_resumed(tmp_path):
    """A killed run whose study then switches backends starts afresh on the new one."""
    from cnnablate.training.train import BACKUP_STATE, _resume_epoch

    state = tmp_path / "backup" / BACKUP_STATE
    state.parent.mkdir()
    np.savez(state, epoch=3, backend="tensorflow", v0=np.zeros(2))
    assert _resume_epoch(tmp_path, "tensorflow") == 3
    assert _resume_epoch(tmp_path, "jax") == 0
    np.savez(state, epoch=2, v0=np.zeros(2))  # saved before backends were recorded: TF's
    assert _resume_epoch(tmp_path, "tensorflow") == 2
    assert _resume_epoch(tmp_path, "jax") == 0
