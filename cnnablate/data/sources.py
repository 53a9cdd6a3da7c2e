"""The dataset sources beyond sklearn digits, by config name (`datasets.<name>.source`).

Thin dispatch only: each loader imports its heavy dependencies (tfds, PIL) when called, so
`prepare._loaders()` stays cheap to import while planning.
"""

from __future__ import annotations

from cnnablate.data.splits import SplitArrays

LoaderResult = tuple[dict[str, SplitArrays], list[str], dict]


def _tfds(spec: dict) -> LoaderResult:
    from cnnablate.data import tfds_source

    return tfds_source.load(spec)


def _cifar10(spec: dict) -> LoaderResult:
    from cnnablate.data import cifar_binary

    return cifar_binary.load(spec, "cifar10")


def _cifar100(spec: dict) -> LoaderResult:
    from cnnablate.data import cifar_binary

    return cifar_binary.load(spec, "cifar100")


def _image_folder(spec: dict) -> LoaderResult:
    from cnnablate.data import image_folder

    return image_folder.load(spec)


LOADERS = {
    "tfds": _tfds,
    "cifar10_binary": _cifar10,
    "cifar100_binary": _cifar100,
    "image_folder": _image_folder,
}
