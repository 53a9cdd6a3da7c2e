"""`benchmarks/gpu_check.py --backend jax`: the GPU check on Keras's JAX backend, for a JAX-only
GPU host (needs keras, jax, numpy, scipy and this project; no Snakemake, and TensorFlow is never
imported: every worker blocks it). Under 10 minutes on one GPU.

Per model (MobileNetV2 at 224 px, All-CNN-C and NIN at 32 px; tiny sizes with --cpu):

- each worker first runs the training job's device probe (a conv and a gather per GPU,
  cnnablate.training.backend.check_jax_kernels: a driver that cannot run the plugin's kernels
  fails here, in one line);
- training images/s of the run's input feed (cnnablate.training.numpy_feed: numpy batches, resized
  and augmented on the host, copied to the device every step) against the same model's
  in-memory compute bound (the same compiled train step on a batch already on the device), in
  float32 and in mixed_bfloat16 (JAX's natural lower precision: no loss scaling); and, float32,
  what a training job gets: Keras's `fit` on that feed with the job's callbacks' NaN check;
- what determinism costs: the feed's images/s with `--xla_gpu_deterministic_ops=true` (the
  jobs' flag) against false, in two processes;
- the first step's time (tracing plus XLA compile) with an empty persistent compilation cache,
  and again in a second process with that cache warm (`jax_compilation_cache_dir`);
- a bit-identical rerun: the second process repeats the first's steps from the same seed, with
  the training job's XLA flags (cnnablate.training.backend.prepare_jax), and the two final
  weights must be equal bit for bit;
- 4 runs packed on the device (4 processes, runs_per_gpu 4: each with its JAX memory cap,
  timed steps started together; summed images/s, and the memory fraction each was given)
  against the first process's one run alone.

The step is Keras's documented stateless JAX loop (`model.stateless_call`, `jax.value_and_grad`,
`optimizer.stateless_apply`, one `jax.jit`), the same for both arms, so the two figures differ
only by where the batch comes from.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_model, gpus, start_together, table  # noqa: E402

# (model, width, image size, native size of the stored images, batch)
FULL = [("mobilenet_v2", 1.0, 224, 256, 64), ("all_cnn_c", 1.0, 32, 32, 128),
        ("nin", 1.0, 32, 32, 128)]
TINY = [("mobilenet_v2", 0.35, 32, 40, 16), ("all_cnn_c", 0.25, 16, 16, 16),
        ("nin", 0.25, 16, 16, 16)]
PACKED = 4
BLOCK_TENSORFLOW = """
import importlib.abc, sys
class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            raise ImportError("gpu_check --backend jax imports no TensorFlow")
sys.meta_path.insert(0, _NoTensorFlow())
"""


# ---------------------------------------------------------------- worker (imports JAX)


def worker(spec: dict) -> dict:
    """Time the first step, then `steps` timed steps of each arm; images/s per arm, the first
    step's seconds and a hash of the final weights."""
    from cnnablate.training.backend import ENV_CACHE_DIR, check_jax_kernels, jax_gpus, prepare_jax
    from cnnablate.training.gpu import ENV_RUNS_PER_GPU

    os.environ[ENV_RUNS_PER_GPU] = str(spec.get("runs_per_gpu", 1))
    os.environ[ENV_CACHE_DIR] = spec["cache"]
    if spec.get("nondeterministic"):  # kept by prepare_jax: flags the user set win
        os.environ["XLA_FLAGS"] = "--xla_gpu_deterministic_ops=false"
    prepare_jax(int(spec.get("threads", 1)), log=lambda m: print(m, file=sys.stderr))
    import jax
    import keras
    import numpy as np

    # the training job's device probe (configure_jax): a conv and a gather on each GPU
    check_jax_kernels(jax, jax_gpus(jax)[0], log=lambda m: print(m, file=sys.stderr))

    from cnnablate.training.numpy_feed import NumpySplit, TrainBatches
    from cnnablate.zoo.models import build_model

    keras.mixed_precision.set_dtype_policy(spec["precision"])
    keras.utils.set_random_seed(0)
    size, native, bs, steps = spec["size"], spec["native"], spec["batch"], spec["steps"]
    model = build_model(spec["model"], (size, size, 3), 10, width=spec["width"])
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_and_state(trainable, non_trainable, x, y):
        logits, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(y, logits), non_trainable

    grad_fn = jax.value_and_grad(loss_and_state, has_aux=True)

    @jax.jit
    def train_step(state, x, y):
        trainable, non_trainable, opt_vars = state
        (loss, non_trainable), grads = grad_fn(trainable, non_trainable, x, y)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return loss, (trainable, non_trainable, opt_vars)

    state = ([v.value for v in model.trainable_variables],
             [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    rng = np.random.default_rng(0)
    n = max(bs * 8, 512)
    split = NumpySplit.load(rng.integers(0, 256, (n, native, native, 3), dtype=np.uint8),
                            rng.integers(0, 10, n), image_size=size)
    epochs = -(-(steps + 5) * bs // n) + 2
    feed = TrainBatches(split, bs, seed=0, first_epoch=0, epochs=epochs,
                        augment_mode="flip_crop")
    batches = (feed[i] for i in range(len(feed)))

    t0 = time.perf_counter()
    loss, state = train_step(state, *next(batches))  # traces and compiles
    float(loss)
    results = {"first_step_s": time.perf_counter() - t0}
    for _ in range(2):  # warm up
        loss, state = train_step(state, *next(batches))
    float(loss)
    start_together(spec)  # packed runs start their timed steps together
    t0 = time.perf_counter()
    for _ in range(steps):
        loss, state = train_step(state, *next(batches))
    float(loss)  # waits for the device
    results["feed"] = steps * bs / (time.perf_counter() - t0)
    # the rerun check: every weight after the feed's steps, to the bit
    digest = hashlib.sha256()
    for array in jax.tree_util.tree_leaves(state):
        digest.update(np.asarray(array).tobytes())
    results["weights_sha256"] = digest.hexdigest()
    if not spec.get("barrier"):
        x, y = (jax.device_put(a) for a in next(batches))
        for _ in range(2):
            loss, state = train_step(state, x, y)
        float(loss)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss, state = train_step(state, x, y)
        float(loss)
        results["bound"] = steps * bs / (time.perf_counter() - t0)
    if spec.get("fit"):
        results["fit"] = _fit_throughput(keras, model, split, spec)
    results["memory_fraction"] = next(
        (os.environ[k] for k in ("XLA_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_MEM_FRACTION")
         if os.environ.get(k)), None)
    results["devices"] = [f"{d.platform}: {d.device_kind}" for d in jax.devices()]
    results["tensorflow_imported"] = "tensorflow" in sys.modules
    return results


def _fit_throughput(keras, model, split, spec: dict) -> float:
    """Images/s of what a training job runs: Keras's `fit` on the job's numpy feed
    (cnnablate.training.numpy_feed, its prefetching threads) with the job's per-epoch NaN check
    (no per-batch hook: Keras's callbacks stay asynchronous), timed over the second of two
    epochs of `steps` steps (the first traces and compiles)."""
    from cnnablate.training.numpy_feed import TrainBatches
    from cnnablate.training.train import stop_on_non_finite_loss

    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    steps, bs = spec["steps"], spec["batch"]
    feed = TrainBatches(split, bs, seed=1, first_epoch=0, epochs=-(-2 * steps * bs // len(split)),
                        augment_mode="flip_crop")
    model.fit(feed, epochs=2, steps_per_epoch=steps, shuffle=False, verbose=0,
              callbacks=[stop_on_non_finite_loss(keras), Clock()])
    return steps * bs / times[-1]


def _command(spec: dict) -> list[str]:
    code = (BLOCK_TENSORFLOW + f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "import json, gpu_check_jax\n"
            "print(json.dumps(gpu_check_jax.worker(json.loads(sys.argv[1]))))\n")
    return [sys.executable, "-c", code, json.dumps(spec)]


def _env() -> dict:
    """The workers' environment: the repository first on PYTHONPATH, the caller's entries kept
    after it (a JAX-only host may hold keras and the other few pure-Python packages the check
    needs in a `pip install --target` folder on PYTHONPATH: docs/cluster.md, "Keras on JAX")."""
    path = [str(ROOT), *(os.path.abspath(p) for p in
                          os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    env.pop("KERAS_BACKEND", None)  # prepare_jax sets it
    return env


def _result(proc_out: str, proc_err: str, code: int, spec: dict) -> dict:
    if code != 0:
        raise RuntimeError(f"worker {spec} failed:\n{proc_err[-3000:]}")
    result = json.loads(proc_out.strip().splitlines()[-1])
    if result["tensorflow_imported"]:
        raise RuntimeError(f"worker {spec} imported TensorFlow")
    return result


def run_worker(spec: dict, timeout: float = 600) -> dict:
    proc = subprocess.run(_command(spec), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=_env())
    return _result(proc.stdout, proc.stderr, proc.returncode, spec)


def packed_throughput(spec: dict, k: int) -> tuple[float, str]:
    """Summed images/s of k workers sharing the device, timed steps started together, and the
    memory fractions prepare_jax gave them."""
    barrier = Path(tempfile.mkdtemp(prefix="gpu_check_barrier_"))
    spec = {**spec, "runs_per_gpu": k, "barrier": str(barrier), "parties": k}
    procs = [subprocess.Popen(_command(spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, env=_env()) for _ in range(k)]
    total, fractions = 0.0, []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            got = _result(out, err, proc.returncode, spec)
            total += got["feed"]
            fractions.append(got["memory_fraction"] or "none")
    finally:
        shutil.rmtree(barrier, ignore_errors=True)
    return total, ", ".join(sorted(set(fractions)))


# ---------------------------------------------------------------- the check (no JAX here)


def what_jax_sees() -> str:
    code = BLOCK_TENSORFLOW + (
        "import json, jax, jaxlib, keras\n"
        "print(json.dumps({'jax': jax.__version__, 'jaxlib': jaxlib.__version__, 'keras': "
        "keras.__version__, 'backend': keras.backend.backend(), 'devices': "
        "[f'{d.platform}: {d.device_kind}' for d in jax.devices()]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**_env(), "KERAS_BACKEND": "jax"})
    seen = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else proc.stderr[-500:]
    smi = ", ".join(gpus()) or "none (no nvidia-smi or no GPU)"
    return (f"JAX: {seen}\nCUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}"
            f"\nnvidia-smi: {smi}\nCPU: {cpu_model()}")


def main(args) -> int:
    """The check as `gpu_check.py --backend jax` runs it (its parsed `args`); the exit code."""
    started = time.time()
    seen = what_jax_sees()
    print(seen, flush=True)
    cases = TINY if args.cpu else FULL
    if args.models:
        cases = [case for case in cases if case[0] in args.models]
    steps = args.steps or (5 if args.cpu else 50)
    threads = os.cpu_count() if args.cpu else 4
    rows, compile_rows, packed_rows, determinism_rows, identical = [], [], [], [], True
    for model, width, size, native, bs in cases:
        cache = tempfile.mkdtemp(prefix="gpu_check_jax_cache_")
        try:
            spec = {"model": model, "width": width, "size": size, "native": native,
                    "batch": bs, "steps": steps, "threads": threads, "cache": cache}
            cold = run_worker({**spec, "precision": "float32", "fit": True})
            warm = run_worker({**spec, "precision": "float32"})  # same run, cache now warm
            mixed = run_worker({**spec, "precision": "mixed_bfloat16"})
            loose = run_worker({**spec, "precision": "float32", "nondeterministic": True})
            same = cold["weights_sha256"] == warm["weights_sha256"]
            identical &= same
            name = f"{model} w{width}"
            for precision, got in (("float32", cold), ("mixed_bfloat16", mixed)):
                fit = f"{got['fit']:.0f}" if "fit" in got else "—"
                rows.append([name, size, bs, precision, f"{got['feed']:.0f}", fit,
                             f"{got['bound']:.0f}", f"{got['feed'] / got['bound']:.2f}"])
                print(rows[-1], flush=True)
            determinism_rows.append([name, size, bs, f"{warm['feed']:.0f}",
                                     f"{loose['feed']:.0f}", f"{loose['feed'] / warm['feed']:.2f}"])
            print(determinism_rows[-1], flush=True)
            compile_rows.append([name, size, bs, f"{cold['first_step_s']:.1f}",
                                 f"{warm['first_step_s']:.1f}",
                                 "yes" if same else "NO: the weights differ"])
            print(compile_rows[-1], flush=True)
            if not args.no_packed:
                four, fractions = packed_throughput({**spec, "precision": "float32",
                                                     "threads": 1 if args.cpu else 2}, PACKED)
                packed_rows.append([name, size, bs, f"{cold['feed']:.0f}", f"{four:.0f}",
                                    f"{four / cold['feed']:.2f}", fractions])
                print(packed_rows[-1], flush=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [f"## gpu_check --backend jax ({'CPU mode' if args.cpu else 'GPU'}), {when}", "",
            "```", seen, "```", "",
            f"Training images/s on Keras's JAX backend, {steps} timed steps after 3 warm-up "
            "steps (feed: numpy batches from the host, cnnablate.training.numpy_feed; fit: what a "
            "training job runs, Keras's fit on that feed with the job's per-epoch NaN check; "
            "bound: the same step as feed on a batch already on the device):", "",
            table(["model", "px", "batch", "precision", "feed", "fit", "bound", "feed / bound"],
                  rows),
            "", "First step (trace + XLA compile), s, with an empty and with a warm persistent "
            "compilation cache; the warm process reran the cold one's steps:", "",
            table(["model", "px", "batch", "cold cache", "warm cache", "bit-identical rerun"],
                  compile_rows),
            "", "What determinism costs: the feed's images/s with the jobs' "
            "--xla_gpu_deterministic_ops=true and with it false (float32):", "",
            table(["model", "px", "batch", "deterministic", "not", "not / deterministic"],
                  determinism_rows)]
    if packed_rows:
        text += ["", f"Runs packed on one device ({PACKED} processes, runs_per_gpu {PACKED}, "
                 "feed arm, float32; summed images/s; the memory fraction each got):", "",
                 table(["model", "px", "batch", "1 run", f"{PACKED} runs", "ratio",
                        "memory fraction"], packed_rows)]
    flags = " --cpu" if args.cpu else ""
    text += ["", f"Total {time.time() - started:.0f} s: `python benchmarks/gpu_check.py "
             f"--backend jax{flags}`"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return 0 if identical else 1
