"""Snakemake entry point: prepare one dataset to results/data/{dataset}/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:  # noqa: F821
    from cnnablate.training.gpu import hide_gpus

    hide_gpus(log)  # before TensorFlow starts (tfds sources): it would take a GPU's memory
    from cnnablate.data.prepare import prepare_dataset

    spec = dict(snakemake.params.spec)  # noqa: F821
    if snakemake.input.get("archive"):  # noqa: F821
        spec["archive"] = str(snakemake.input.archive)  # noqa: F821
    meta = prepare_dataset(
        snakemake.wildcards.dataset,  # noqa: F821
        spec,
        Path(snakemake.output.meta).parent,  # noqa: F821
    )
    print(f"prepared {meta['name']}: {meta['counts']}", file=sys.stderr)
