"""Snakemake entry point: a tuned study's halving rung (which candidates continue) or its zoom
stage (the new candidates around each pick); cnnablate.decisions.stages."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]) as log:  # noqa: F821
    from cnnablate.decisions import stages
    from cnnablate.workflow.config import candidate_name, load_schema

    specs = dict(snakemake.params.specs)  # noqa: F821
    if snakemake.rule == "tuning_rung":  # noqa: F821
        stages.write_rung(snakemake.input.metrics, snakemake.wildcards.study, specs,  # noqa: F821
                          int(snakemake.params.rung), snakemake.output.state, log=log)  # noqa: F821
    else:
        stages.write_zoom(snakemake.input.metrics, snakemake.wildcards.study, specs,  # noqa: F821
                          snakemake.output.state, candidate_name, load_schema(), log=log)  # noqa: F821
