"""The tiny configs of the end-to-end tests, in one place (tests/README.md).

`FINISHED` is the config of the one finished workflow of a test session (the `finished`
fixture of tests/conftest.py): All-CNN-C and NIN on digits at 16x16, a few hundred images, one
or two epochs; five training runs, and two runs copied from another study's.

- `acts`: two activations over two seeds (tables, paired tests, fingerprints, freshness);
- `tiny`: two variants, one seed, user markup and reported numbers (the report in a browser).
  Its runs are `acts`'s seed-0 runs (same settings): copied, not trained again
  (cnnablate/workflow/shared.py);
- `other`: one NIN run (a second model, for the fingerprints: editing one model reruns its runs).
"""

from __future__ import annotations

import copy

DIGITS = {"digits": {"source": "sklearn_digits"}}
MARKUP = "<b>x</b>"  # user text that must show as text

# All-CNN-C at 16x16 on a few hundred digits: a couple of seconds per epoch on one core.
ALL_CNN_C = {"name": "all_cnn_c", "width": 0.125, "bn_momentum": 0.9}
TRAIN = {"epochs": 2, "batch_size": 32, "learning_rate": 0.05, "max_train_images": 192,
         "max_eval_images": 96}

ACTS = {
    "description": "Tiny <b>activation</b> study",
    "dataset": "digits",
    "image_size": 16,
    "model": ALL_CNN_C,
    "train": TRAIN,
    "seeds": [0, 1],
    "baseline": "relu",
    "variants": {"relu": {"activation": "relu"}, "elu": {"activation": "elu"}},
}
TINY_STUDY = "tiny"
TINY_VARIANTS = ("relu", "elu")
TINY = {
    **ACTS,
    "description": f"Does {MARKUP} change anything? (tiny browser-check study)",
    "seeds": [0],
    "variants": {
        "relu": {"activation": "relu", "description": f"the {MARKUP} default"},
        "elu": {"activation": "elu"},
    },
    "reference": {"source": f"Paper {MARKUP}", "metric": "validation accuracy",
                  "values": {"relu": 0.9, "elu": 0.91}, "note": f"note {MARKUP}"},
}
OTHER = {
    "dataset": "digits",
    "image_size": 16,
    "model": {"name": "nin", "width": 0.125},
    "train": {"epochs": 1, "batch_size": 32, "max_train_images": 128, "max_eval_images": 64},
    "seeds": [0],
    "variants": {"prelu": {"activation": "prelu"}},
}
FINISHED = {
    "datasets": DIGITS,
    "report": {"title": f"cnnablate browser check {MARKUP}"},
    "studies": {"acts": ACTS, TINY_STUDY: TINY, "other": OTHER},
}
# (study, variant, seed) of every run of FINISHED, and those copied from another study's run.
FINISHED_RUNS = [("acts", v, s) for v in ("relu", "elu") for s in (0, 1)] + [
    (TINY_STUDY, v, 0) for v in TINY_VARIANTS] + [("other", "prelu", 0)]
FINISHED_SHARED = {(TINY_STUDY, "relu", 0): ("acts", "relu", 0),
                   (TINY_STUDY, "elu", 0): ("acts", "elu", 0)}


def config(**studies: dict) -> dict:
    """A config of the digits dataset and `studies` (copies: edit them freely)."""
    return {"datasets": copy.deepcopy(DIGITS), "studies": copy.deepcopy(studies)}


def finished() -> dict:
    """A copy of FINISHED to edit."""
    return copy.deepcopy(FINISHED)


# The smallest network the tests train: All-CNN-C at an eighth of its width, on 16x16 digits.
SMALL_MODEL = {"name": "all_cnn_c", "width": 0.125}
ONE_RELU = {"relu": {"activation": "relu"}}


def study(train: dict, *, model: dict | None = None, seeds: list | dict | None = None,
          variants: dict | None = None, **keys) -> dict:
    """A study of digits at 16x16 on SMALL_MODEL (plus `model`'s keys): `train` as given, seed
    0 and the one variant relu unless `seeds` and `variants` say otherwise, and any other study
    keys (`image_size`, `baseline`, ...) as given. A copy: edit it freely."""
    return copy.deepcopy({
        "dataset": "digits", "image_size": 16, "model": {**SMALL_MODEL, **(model or {})},
        "train": train, "seeds": [0] if seeds is None else seeds,
        "variants": ONE_RELU if variants is None else variants, **keys,
    })


# The tuning workflow tests' studies (test_tuning_workflow, test_halving_workflow): All-CNN-C at
# 12x12, width 0.25 without dropout, 256 training and 128 evaluation images.
TUNING_TRAIN = {"epochs": 2, "batch_size": 32, "learning_rate": 0.05, "max_train_images": 256,
                "max_eval_images": 128}
TUNING_MODEL = {"width": 0.25, "bn_momentum": 0.9, "dropout": False}


def tuning_study(**keys) -> dict:
    """A tuned study on digits for the tuning workflow tests: `keys` as given (`tune`, ...)."""
    return study(dict(TUNING_TRAIN), model=TUNING_MODEL, image_size=12, **keys)
