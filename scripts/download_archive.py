"""Snakemake entry point: download an official archive, verified by size and SHA-256."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]):  # noqa: F821
    from cnnablate.data.archive import download

    entry = snakemake.params.entry  # noqa: F821
    download(entry["url"], snakemake.output[0], entry["size"], entry["sha256"])  # noqa: F821
