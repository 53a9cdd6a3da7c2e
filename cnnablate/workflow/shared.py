"""Runs shared between studies: a run identical to an earlier study's is trained once.

Two studies often hold the same run under two names: the default config's `initializers`
study's `he_normal` variant is the `activations` study's `relu` (same model, data, settings and
seed). Its fully resolved run config, less the names that only label it (study, variant,
baseline), is then equal, and so is what training would produce (training is deterministic per
config and seed). The later study's run is not trained again: a light job copies the earlier
run's files into its own run folder (`share_run`, rules/train.smk) and relabels `metrics.json`
(study, variant, and `trained_as`: the run folder it was trained in). Every reader of run
folders (tables, figures, report, `status`, `tensorboard --logdir results/runs/<study>`: the
run's TensorBoard events are copied too) keeps its one folder per (study, variant, seed).

Within one study two identical variants are left alone: that is a deliberate A/A check.

Plain Python: the Snakefile calls it while planning.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from cnnablate.base.atomic import atomic_path, write_json_atomic
from cnnablate.base.ids import config_hash, run_id
from cnnablate.base.layout import HISTORY, METRICS, MODEL, PREDICTIONS, TENSORBOARD_DIR
from cnnablate.zoo.initializers import auto_initializer

NAMING_KEYS = frozenset({"study", "variant", "baseline"})  # labels, not training settings
COPIED = (HISTORY, MODEL, PREDICTIONS)  # copied as they are; METRICS is relabelled
# The run's TensorBoard events, copied as they are: TensorBoard names a run by its folder, so
# the copy shows under the study that copied it.
EVENTS = TENSORBOARD_DIR


def training_key(run: Mapping) -> str:
    """What a run trains, without its names: equal keys train the same model the same way.
    `init: auto` counts as the initializer it picks (he_normal for relu)."""
    settings = {k: v for k, v in run.items() if k not in NAMING_KEYS}
    if settings.get("init") == "auto":
        settings["init"] = auto_initializer(run["activation"])
    return config_hash(settings)


def shared_runs(runs: Iterable[Mapping], tuned_studies: Iterable[str] = ()
                ) -> dict[tuple[str, str, int], tuple[str, str, int]]:
    """{run id: id of the earlier study's identical run it is copied from}, for every run that
    an earlier study (in config order) already trains. Runs of `tuned_studies` (with `tune:`)
    are never shared either way: their settings are known only once the study's selection is
    made, and before it they would look identical to an untuned study's runs."""
    first: dict[str, tuple[str, str, int]] = {}
    shared = {}
    skip = set(tuned_studies)
    for run in runs:
        if run["study"] in skip:
            continue
        key, ident = training_key(run), run_id(run)
        source = first.get(key)
        if source is not None and source[0] != ident[0]:
            shared[ident] = source
        else:
            first.setdefault(key, ident)
    return shared


def copy_shared_run(source_dir: str | Path, dest_dir: str | Path, run: Mapping,
                    trained_as: str) -> None:
    """Copy a finished run's files from `source_dir` into `dest_dir` as `run` (its study,
    variant and baseline in metrics.json); `trained_as` names the source folder."""
    source_dir, dest_dir = Path(source_dir), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        with atomic_path(dest_dir / name) as tmp:
            shutil.copyfile(source_dir / name, tmp)
    copy_events(source_dir / EVENTS, dest_dir / EVENTS)
    metrics = json.loads((source_dir / METRICS).read_text())
    labels = {key: run[key] for key in NAMING_KEYS}
    metrics.update(study=run["study"], variant=run["variant"], trained_as=trained_as)
    metrics["run_config"] = {**metrics.get("run_config", {}), **labels}
    write_json_atomic(dest_dir / METRICS, metrics)


def copy_events(source: Path, dest: Path) -> None:
    """The folder `source` (a run's TensorBoard events) as `dest`, replacing what was there;
    nothing where the run wrote none (`train: {tensorboard: false}`). Copied beside `dest`
    first, so a reader never sees half of it."""
    if not source.is_dir():
        return
    tmp = dest.with_name(f".tmp{os.getpid()}.{dest.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
