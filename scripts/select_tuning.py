"""Snakemake entry point: a tuned study's selection (each variant's candidate) and tuning.csv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:  # noqa: F821
    from cnnablate.decisions.selection import write_selection
    from cnnablate.decisions.stages import staged, write_stages_selection

    specs = dict(snakemake.params.specs)  # noqa: F821
    # halving or a zoom: the best of what trained the whole budget (cnnablate.decisions.stages)
    write = write_stages_selection if any(map(staged, specs.values())) else write_selection
    write(
        snakemake.input.metrics,  # noqa: F821
        snakemake.wildcards.study,  # noqa: F821
        specs,
        snakemake.output.selection,  # noqa: F821
        snakemake.output.table,  # noqa: F821
        log=log,
    )
