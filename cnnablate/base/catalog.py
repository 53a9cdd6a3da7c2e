"""The registries: one per extension point, importable without Keras, TensorFlow or matplotlib.

The Snakefile plans and validates configs from these tables (planning must never import
TensorFlow: 8 s per `snakemake -n`), the schema's enums, `cnnablate.workflow.resources`, the
report's
figure list and the tests' parametrisation are derived from them, and the code that does the work
is imported by name only when a job runs it (`MODELS[name].module`, ...). So a run of model X
imports, and its code fingerprint covers, `models/X.py` and the shared layers only
(`cnnablate.workflow.fingerprint`).

Adding a model, dataset source or figure: one module plus one entry here (docs/extending.md).
What in an entry can change a result (which module builds a model, an activation's default
parameters) is part of the code fingerprint of the jobs it concerns; the rest (resource
coefficients, captions, test sizes) reruns nothing when edited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# name -> default parameters (the defaults the seeds and the papers use). The layers are built
# by `cnnablate.zoo.activations` (a test keeps the two in step).
ACTIVATIONS: dict[str, dict[str, float | str]] = {
    "relu": {},
    "relu6": {},
    "leaky_relu": {"negative_slope": 0.3},  # Keras's layer default, what seed 000 used
    "prelu": {"alpha_init": 0.25},
    # lower/upper: slope ~ U(lower, upper) ("pytorch"); a_lower/a_upper: slope = 1/a,
    # a ~ U(a_lower, a_upper) ("xu2015"). See cnnablate.zoo.activations.RReLU.
    "rrelu": {
        "lower": 1.0 / 8.0,
        "upper": 1.0 / 3.0,
        "convention": "pytorch",
        "a_lower": 3.0,
        "a_upper": 8.0,
    },
    "elu": {"alpha": 1.0},
    "selu": {},
    "celu": {"alpha": 1.0},
    "gelu": {"approximate": 0},
    "swish": {},
    "silu": {},
    "mish": {},
    "hard_swish": {},
    "sigmoid": {},
    "tanh": {},
    "linear": {},
}

NORMS: tuple[str, ...] = ("before", "after", "none")

# Keras initializer names accepted for `init` (plus "auto", which picks by activation).
INITIALIZERS: tuple[str, ...] = (
    "auto",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "variance_scaling",
    "zeros",
    "ones",
)

# Keyword options every model's build() takes besides its own `options`.
COMMON_MODEL_OPTIONS: tuple[str, ...] = ("name", "width")


@dataclass(frozen=True)
class Model:
    """A network of the zoo: `cnnablate.zoo.models.<module>.build(input_shape, num_classes, *,
    activation, norm, init, width, **options)` returns a Keras model of logits."""

    module: str
    min_image_size: int  # smallest input side it accepts (total stride, valid convolutions)
    options: tuple[str, ...]  # valid `model:` keys besides name and width
    # Resource estimate (cnnablate.workflow.resources): training images per second at 32x32, width
    # 1.0
    # (CPU: per thread; GPU: about half a T4), and activation memory kept for the backward pass,
    # KB per input pixel per image at width 1.0.
    images_per_s: dict[str, float] = field(default_factory=lambda: {"cpu": 5.0, "gpu": 400.0})
    activation_kb_per_pixel: float = 8.0
    test_image_size: int = 32  # what the tests build it at (small and fast)
    test_width: float = 0.25


MODELS: dict[str, Model] = {
    # CPU numbers from this project's runs on a 2-core VM (all_cnn_c w0.25 ~240/s and
    # mobilenet_v2 w0.35 ~226/s at 32px scale to ~15 and ~28), rounded down; GPU: about half
    # what a T4 trains at (MobileNetV2 at 224x224 ~250 images/s there, ~12k/s at 32x32).
    # all_cnn_c / nin keep 96-192 channels at full resolution; mobilenet_v2 downsamples at once.
    "mobilenet_v2": Model(
        module="mobilenet_v2", min_image_size=32, options=("include_top", "bn_momentum"),
        images_per_s={"cpu": 15.0, "gpu": 6000.0}, activation_kb_per_pixel=1.5,
        test_image_size=32,
    ),
    "all_cnn_c": Model(
        module="all_cnn", min_image_size=12, options=("dropout", "bn_momentum"),
        images_per_s={"cpu": 10.0, "gpu": 1000.0}, activation_kb_per_pixel=6.0,
        test_image_size=16, test_width=0.1,
    ),
    "nin": Model(
        module="nin", min_image_size=16, options=("dropout", "bn_momentum"),
        images_per_s={"cpu": 8.0, "gpu": 800.0}, activation_kb_per_pixel=6.0,
        test_image_size=16, test_width=0.1,
    ),
}


@dataclass(frozen=True)
class Source:
    """A dataset source: `cnnablate.data.<module>.<loader>(spec, *args)` returns
    (splits, class names, extra meta); `options` are the `datasets.<name>` keys it reads
    besides COMMON_DATASET_OPTIONS (schemas/dataset_sources.md describes them)."""

    module: str
    loader: str
    options: tuple[str, ...]
    needs_download: bool  # the data comes from the network unless the user has a copy
    args: tuple = ()


COMMON_DATASET_OPTIONS: tuple[str, ...] = ("source", "val_fraction", "split_seed", "split",
                                           "description")
_CIFAR_OPTIONS = ("download", "archive", "verify", "expected_size", "expected_sha256")

DATASET_SOURCES: dict[str, Source] = {
    "sklearn_digits": Source("digits", "load", ("test_fraction",), needs_download=False),
    "tfds": Source(
        "tfds_source", "load",
        ("name", "splits", "data_dir", "download", "resize", "image_key", "label_key",
         "probe_host"),
        needs_download=True,
    ),
    "cifar10_binary": Source("cifar_binary", "load", _CIFAR_OPTIONS, needs_download=True,
                             args=("cifar10",)),
    "cifar100_binary": Source("cifar_binary", "load", (*_CIFAR_OPTIONS, "label"),
                              needs_download=True, args=("cifar100",)),
    "image_folder": Source(
        "image_folder", "load", ("path", "image_size", "channels", "skip_invalid",
                                 "test_fraction"),
        needs_download=False,
    ),
}


@dataclass(frozen=True)
class Figure:
    """A per-study figure: `function` ("module:function") is called as
    `function(data: cnnablate.reporting.figures.StudyData, path)` and writes a PNG; `caption` is its
    Snakemake-report caption file, `title` the line above it in the HTML report; `about`, the
    run setting (a key of the resolved run) it shows, if it shows one: the HTML report then shows
    it only for a study whose variants differ in that setting."""

    function: str
    caption: str
    title: str
    about: str | None = None


FIGURES: dict[str, Figure] = {
    "learning_curves": Figure(
        "cnnablate.reporting.figures:plot_learning_curves", "report/captions/learning_curves.rst",
        "Learning curves: validation accuracy and loss per epoch, mean over the completed "
        "seeds, band from the lowest to the highest; diverged runs dotted, each on its own",
    ),
    "final_metric": Figure(
        "cnnablate.reporting.figures:plot_final_metric", "report/captions/final_metric.rst",
        "Headline metric per variant: mean and confidence interval over seeds; the dashed line "
        "is the baseline",
    ),
    "activation_functions": Figure(
        "cnnablate.reporting.figures:plot_activation_functions",
        "report/captions/activation_functions.rst",
        "Activation functions and their derivatives, as computed by the layers the runs "
        "trained with",
        about="activation",  # one activation for every variant: nothing to compare
    ),
    "activation_statistics": Figure(
        "cnnablate.reporting.figures:plot_activation_statistics",
        "report/captions/activation_statistics.rst",
        "Per activation layer: fraction of units that never fire, and the mean activation "
        "(mean over seeds)",
    ),
}

# Figures only a tuned study (`tune:`) has, drawn from its tuning.csv as well (StudyData's
# `tuning_csv`) by their own job, so an untuned study's figures job and files stay as they are.
TUNING_FIGURES: dict[str, Figure] = {
    "tuning": Figure(
        "cnnablate.reporting.tuning_figure:plot_tuning", "report/captions/tuning.rst",
        "Tuning: the selection metric against each tuned value per variant, a dot per tuning "
        "seed, the line through their means, a star on the selected value (with several tuned "
        "keys, each panel holds the others at the selected setting)",
    ),
    "budget_curves": Figure(
        "cnnablate.reporting.budget_figure:plot_budget", "report/captions/budget_curves.rst",
        "Budget curves: the expected best tuning metric of n candidates per variant (Dodge et "
        "al. 2019, Tang et al. 2020's unbiased estimator), the equal budget marked",
    ),
}


def activation_type(spec: str | dict) -> str:
    """The registry name of an activation spec (a name or ``{"type": name, ...}``)."""
    return spec if isinstance(spec, str) else str(spec.get("type", ""))
