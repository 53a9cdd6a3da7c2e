"""Snakemake entry point: a study's paper-ready tables (table.tex, table.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]):  # noqa: F821
    from cnnablate.reporting.paper import write_paper_tables

    inputs, out = snakemake.input, snakemake.output  # noqa: F821
    # a tuned study's tuning.csv (one file, or none for an untuned study)
    tuning = [inputs.tuning] if isinstance(inputs.tuning, str) else list(inputs.tuning)
    write_paper_tables(
        inputs.runs,
        inputs.summary,
        inputs.paired,
        dict(snakemake.params.study),  # noqa: F821
        out.tex,
        out.md,
        confidence=snakemake.params.confidence,  # noqa: F821
        learning_rates=dict(snakemake.params.learning_rates),  # noqa: F821
        tuning_csv=tuning[0] if tuning else None,
    )
