"""Snakemake entry point: the figures of one study."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]):  # noqa: F821
    from cnnablate.reporting.figures import study_figures

    study_figures(
        list(snakemake.input.metrics),  # noqa: F821
        list(snakemake.input.history),  # noqa: F821
        snakemake.input.summary,  # noqa: F821
        dict(snakemake.params.study),  # noqa: F821
        # figure name -> PNG (each PDF, output `{name}_pdf`, is written beside its PNG)
        {k: v for k, v in snakemake.output.items() if not k.endswith("_pdf")},  # noqa: F821
        confidence=snakemake.params.confidence,  # noqa: F821
        tuning_csv=snakemake.input.get("tuning"),  # noqa: F821 - the tuning_figures rule's
    )
