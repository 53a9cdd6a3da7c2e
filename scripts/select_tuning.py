"""Snakemake entry point: a tuned study's selection (each variant's candidate) and tuning.csv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:  # noqa: F821
    from cnnablate.decisions.selection import write_selection

    write_selection(
        snakemake.input.metrics,  # noqa: F821
        snakemake.wildcards.study,  # noqa: F821
        dict(snakemake.params.specs),  # noqa: F821
        snakemake.output.selection,  # noqa: F821
        snakemake.output.table,  # noqa: F821
        log=log,
    )
