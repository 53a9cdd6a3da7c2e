"""A run's partition of a prepared dataset: which images it trains, validates and tests on.

The prepared data (`results/data/{dataset}/`) is one copy, split once (`prepare.py`,
`split_seed`). A run does not necessarily use that split as it is:

- `split: fixed` (a dataset's setting): every run uses the prepared split. A verdict is then
  about that one split: its luck is shared by every seed and variant and never averages out.
- `split: per_seed` (the default): each seed draws its own partition from a seed derived from
  (dataset name, seed), stratified by class with exactly the prepared split's per-class sizes.
  Every variant and every study at that seed gets the same partition (pairing and shared runs
  keep working); tuning seeds get their own. Which splits are redrawn (`redrawn_splits`): train
  and validation always; the test split too where the source has no official one
  (`sklearn_digits`, `image_folder`), never an official test set (CIFAR, tfds).

A partition is index lists into the *pool*: the prepared train, val and test files concatenated
in that order (pool index = position in its file + the sizes of the files before it). Computed
in the training job from the prepared labels (milliseconds), so no per-seed files: the
partition is a pure function of (dataset name, seed, mode, redrawn splits, prepared labels), all
of which the job's inputs and params already cover. Its identity (`partition_id`, a hash of the
three index lists) goes into the run's metrics.json.

Plain numpy: the planning side imports `redrawn_splits` and `saves_predictions`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from cnnablate.base.layout import SPLITS
from cnnablate.data.splits import SplitArrays

MODES = ("per_seed", "fixed")
DEFAULT_MODE = "per_seed"
# Sources whose test split is drawn by `prepare.py` (no official test set): redrawn per seed.
DRAWN_TEST_SOURCES = frozenset({"sklearn_digits", "image_folder"})
PREDICTIONS_DTYPE = np.int16
NOT_EVALUATED = -1  # a predictions.npy entry for an image the run did not evaluate


def redrawn_splits(mode: str, source: str) -> list[str]:
    """The splits a run of `mode` on a dataset of `source` draws per seed ([] when fixed)."""
    if mode == "fixed":
        return []
    return ["train", "val", "test"] if source in DRAWN_TEST_SOURCES else ["train", "val"]


def run_partition(mode: str, source: str) -> dict:
    """What a resolved run config holds under `partition` (cnnablate.workflow.config)."""
    if mode not in MODES:
        raise ValueError(f"split: unknown mode {mode!r}; valid: {', '.join(MODES)}")
    return {"mode": mode, "redrawn": redrawn_splits(mode, source)}


def saves_predictions(run: Mapping) -> bool:
    """Whether a run's headline is on a fixed test set, so that its per-image predictions
    are saved (predictions.npy): `eval_split: test` and a test split no seed redraws (an
    official test set, or `split: fixed`)."""
    partition = run.get("partition") or {"redrawn": []}
    return run.get("eval_split") == "test" and "test" not in partition["redrawn"]


def partition_seed(dataset: str, seed: int) -> np.random.SeedSequence:
    """The seed of (dataset name, run seed)'s partition: every run at that pair, whatever its
    study or variant, draws the same one. The name enters through a hash (stable across
    processes and machines, unlike Python's `hash`)."""
    name = int.from_bytes(hashlib.sha256(dataset.encode()).digest()[:8], "little")
    return np.random.SeedSequence([name, int(seed) % 2**63, 0x9A27])


def _offsets(sizes: Mapping[str, int]) -> dict[str, int]:
    out, start = {}, 0
    for split in SPLITS:
        out[split] = start
        start += int(sizes[split])
    return out


def fixed_partition(sizes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The prepared split itself, as pool indices."""
    offsets = _offsets(sizes)
    return {s: offsets[s] + np.arange(int(sizes[s]), dtype=np.int64) for s in SPLITS}


def draw_partition(labels: Mapping[str, np.ndarray], redrawn: Sequence[str], dataset: str,
                   seed: int) -> dict[str, np.ndarray]:
    """A per-seed partition (sorted pool indices per split): the `redrawn` splits' images
    pooled and dealt out again, class by class, in exactly the prepared split's per-class
    counts (stratified as the prepared split is); the other splits stay as prepared."""
    sizes = {s: len(labels[s]) for s in SPLITS}
    out = fixed_partition(sizes)
    redrawn = [s for s in SPLITS if s in redrawn]
    if not redrawn:
        return out
    members = np.concatenate([out[s] for s in redrawn])
    pool_labels = np.concatenate([np.asarray(labels[s], dtype=np.int64) for s in SPLITS])
    member_labels = pool_labels[members]
    rng = np.random.default_rng(partition_seed(dataset, seed))
    dealt: dict[str, list[np.ndarray]] = {s: [] for s in redrawn}
    for label in np.unique(member_labels):
        idx = members[member_labels == label]
        idx = idx[rng.permutation(len(idx))]
        start = 0
        for split in redrawn:
            take = int(np.count_nonzero(np.asarray(labels[split]) == label))
            dealt[split].append(idx[start:start + take])
            start += take
    for split in redrawn:
        out[split] = np.sort(np.concatenate(dealt[split])).astype(np.int64)
    return out


def partition_id(indices: Mapping[str, np.ndarray]) -> str:
    """A short hash of the three index lists (12 hex digits): equal ids, equal partitions."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(split.encode())
        digest.update(np.ascontiguousarray(indices[split], dtype="<i8").tobytes())
    return digest.hexdigest()[:12]


def gather(files: Mapping[str, SplitArrays], indices: np.ndarray) -> SplitArrays:
    """The images and labels at sorted pool `indices`, from the prepared splits `files`."""
    sizes = {s: len(files[s][1]) for s in SPLITS}
    offsets = _offsets(sizes)
    images, labels = [], []
    for split in SPLITS:
        lo, hi = offsets[split], offsets[split] + sizes[split]
        local = indices[(indices >= lo) & (indices < hi)] - lo
        if len(local):
            images.append(np.asarray(files[split][0][local]))
            labels.append(np.asarray(files[split][1][local]))
    if not images:
        first = files["train"][0]
        return (np.zeros((0, *first.shape[1:]), first.dtype), np.zeros(0, np.int64))
    return np.concatenate(images), np.concatenate(labels)


def load_partition(files: Mapping[str, SplitArrays], partition: Mapping | None, dataset: str,
                   seed: int) -> tuple[dict[str, SplitArrays], dict]:
    """A run's three splits from the prepared ones (`files`: split -> (images, labels), as
    `store.load_prepared` gives them) and the partition's record for metrics.json:
    `{mode, id, sizes: {train, val, test}, redrawn}`. `partition` is the run config's (None:
    fixed, as a run config from before partitions). A split no seed redraws is the prepared
    array itself (memory-mapped, not copied)."""
    partition = partition or {"mode": "fixed", "redrawn": []}
    labels = {s: np.asarray(files[s][1]) for s in SPLITS}
    redrawn = list(partition.get("redrawn") or [])
    indices = draw_partition(labels, redrawn, dataset, seed)
    splits = {s: (files[s] if s not in redrawn else gather(files, indices[s])) for s in SPLITS}
    record = {
        "mode": partition.get("mode", "fixed"),
        "id": partition_id(indices),
        "sizes": {s: int(len(indices[s])) for s in SPLITS},
        "redrawn": redrawn,
    }
    return splits, record
