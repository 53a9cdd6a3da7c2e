"""Snakemake entry point (smoke mode): prepare a SYNTHETIC stand-in for absent real data."""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:  # noqa: F821
    from cnnablate.training.gpu import hide_gpus

    hide_gpus(log)  # before TensorFlow starts (tfds's mock): it would take a GPU's memory
    from cnnablate.data.synthetic import prepare_synthetic

    name = snakemake.wildcards.dataset  # noqa: F821
    log(f"SYNTHETIC data: the real files of dataset {name!r} are absent, so this smoke run "
        "trains on generated images in its real format; its numbers mean nothing")
    with tempfile.TemporaryDirectory() as workdir:
        meta = prepare_synthetic(name, dict(snakemake.params.spec),  # noqa: F821
                                 Path(snakemake.output.meta).parent, workdir)  # noqa: F821
    log(f"prepared SYNTHETIC {name}: {meta['counts']}")
