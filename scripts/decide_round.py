"""Snakemake entry point: the decision after one round of adaptive seeds (which variants go on)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]):  # noqa: F821
    from cnnablate.reporting.aggregate import write_round_state

    write_round_state(
        snakemake.input.metrics,  # noqa: F821
        dict(snakemake.params.study),  # noqa: F821
        snakemake.params.round,  # noqa: F821
        snakemake.output.state,  # noqa: F821
        labels=snakemake.input.get("labels"),  # noqa: F821
    )
