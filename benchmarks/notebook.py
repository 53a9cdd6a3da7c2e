"""The baseline the pipeline is measured against: a study's runs one after another in one plain
Python process, the way the seed notebooks run their variants.

    python benchmarks/notebook.py CONFIG.yaml [--out results.json]

Written as a notebook would be, and as fast as one would be: load the data once, resize it once
to numpy arrays (float32 in [-1, 1], the same pixels the pipeline trains on: the same prepared
split and the same resize), then for each (variant, seed) build the same model with
`cnnablate.zoo.models.build_model`, compile it with the same optimizer, loss and metric, and
`model.fit(x, y, batch_size, epochs, validation_data=(x_val, y_val))`, then `evaluate` on
the test split. TensorFlow's default threading (all cores in this one process), no determinism
switch, no checkpoints, no saved models, no activation statistics, no figures or report: only
the histories kept in memory (and, for the benchmark, one small JSON written at the end).
The run list comes from `cnnablate.workflow.config.resolve_runs` only so that it is the same list.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def notebook_arrays(images, labels, size: int) -> tuple:
    """What a notebook trains on: the images resized once, as float32 in [-1, 1], in memory."""
    import numpy as np

    from cnnablate.training.pipeline import resize_all

    x = resize_all(images, size, 3).astype(np.float32) / 127.5 - 1.0
    return x, np.asarray(labels, dtype=np.int64)


def notebook_model(run: dict, num_classes: int):
    """`run`'s model, compiled as the training job compiles it (SGD, constant learning rate)."""
    import keras

    from cnnablate.zoo.models import build_model

    size = run["image_size"]
    model = build_model(
        run["model"]["name"], (size, size, 3), num_classes,
        activation=run["activation"], norm=run["norm"], init=run["init"],
        **{k: v for k, v in run["model"].items() if k != "name"},
    )
    train = run["train"]
    model.compile(
        optimizer=keras.optimizers.SGD(
            train["learning_rate"], momentum=train["momentum"], nesterov=train["nesterov"]
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a cnnablate config (YAML); sklearn_digits datasets only")
    parser.add_argument("--out", help="write per-run results as JSON here")
    args = parser.parse_args()

    import keras
    import yaml

    from cnnablate.data import digits
    from cnnablate.workflow.config import resolve_runs, validate

    config = validate(yaml.safe_load(Path(args.config).read_text()))
    runs = resolve_runs(config)

    # Cell 1: the data, once per (dataset, image size).
    arrays: dict[tuple[str, int], dict] = {}

    def data(dataset: str, size: int) -> dict:
        if (dataset, size) not in arrays:
            spec = config["datasets"][dataset]
            if spec["source"] != "sklearn_digits":
                raise SystemExit(f"notebook baseline: only sklearn_digits, not {spec['source']}")
            splits, class_names, _ = digits.load(spec)
            arrays[(dataset, size)] = {
                "num_classes": len(class_names),
                **{
                    name: notebook_arrays(images, labels, size)
                    for name, (images, labels) in splits.items()
                },
            }
        return arrays[(dataset, size)]

    # Cell 2..N: one variant after another.
    results = []
    for run in runs:
        train = run["train"]
        unsupported = {
            k: train.get(k)
            for k in ("max_train_images", "max_eval_images", "weight_decay")
            if train.get(k)
        }
        if train["optimizer"] != "sgd" or train.get("lr_schedule", "constant") != "constant":
            unsupported["optimizer"] = (train["optimizer"], train.get("lr_schedule"))
        if train.get("augment", "none") != "none" or unsupported:
            raise SystemExit(f"notebook baseline: unsupported settings {unsupported}")
        t0 = time.perf_counter()
        d = data(run["dataset"], run["image_size"])
        keras.utils.set_random_seed(int(run["seed"]))
        model = notebook_model(run, d["num_classes"])
        history = model.fit(
            *d["train"], batch_size=train["batch_size"], epochs=train["epochs"],
            validation_data=d["val"], verbose=0,
        )
        test_loss, test_acc = model.evaluate(*d["test"], batch_size=train["batch_size"], verbose=0)
        results.append({
            "study": run["study"], "variant": run["variant"], "seed": run["seed"],
            "best_val_accuracy": max(history.history["val_accuracy"]),
            "test_accuracy": float(test_acc),
            "seconds": time.perf_counter() - t0,
        })
        print(f"{run['study']}/{run['variant']}/seed{run['seed']}: "
              f"val {results[-1]['best_val_accuracy']:.4f} test {test_acc:.4f} "
              f"({results[-1]['seconds']:.1f} s)", flush=True)

    total = time.perf_counter() - T_START
    print(f"notebook: {len(results)} runs in {total:.1f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"runs": results, "seconds": total}, indent=1))


if __name__ == "__main__":
    main()
