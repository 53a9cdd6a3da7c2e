"""Snakemake entry point: a run identical to another study's, copied from it, not retrained."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:  # noqa: F821
    from cnnablate.workflow.shared import copy_shared_run

    params = snakemake.params  # noqa: F821
    source = Path(snakemake.input.metrics).parent  # noqa: F821
    copy_shared_run(source, Path(snakemake.output.metrics).parent, params.run,  # noqa: F821
                    params.trained_as)
    log(f"copied from {params.trained_as}: the same run config (but its names) and seed")
