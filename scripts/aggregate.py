"""Snakemake entry point: per-study tables (runs, summary, paired comparisons)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]):  # noqa: F821
    from cnnablate.reporting.aggregate import aggregate_study

    out = snakemake.output  # noqa: F821
    aggregate_study(
        snakemake.input.metrics,  # noqa: F821
        dict(snakemake.params.study),  # noqa: F821
        out.runs,
        out.summary,
        out.paired,
        confidence=snakemake.params.confidence,  # noqa: F821
        labels=snakemake.input.get("labels"),  # noqa: F821
    )
