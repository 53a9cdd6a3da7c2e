"""Snakemake entry point: render report/index.html."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

with log_to(snakemake.log[0]):  # noqa: F821
    from cnnablate.base.layout import HISTORY, METRICS
    from cnnablate.workflow.freshness import check_runs_exist
    from cnnablate.reporting.report import render_report

    params = snakemake.params  # noqa: F821
    studies = []
    inputs = snakemake.input  # noqa: F821
    for i, settings in enumerate(params.studies):  # the rule lists studies in this order
        name = settings["name"]
        runs = [d for _, _, d in params.runs[name]]
        # Never render old numbers: every run the table names must still have its files.
        check_runs_exist(inputs.runs[i], {(v, int(s)): d for v, s, d in params.runs[name]})
        studies.append({
            "settings": dict(settings),
            "summary": inputs.summary[i],
            "paired": inputs.paired[i],
            "runs": inputs.runs[i],
            "metrics_files": [f"{d}/{METRICS}" for d in runs],
            "history_files": [f"{d}/{HISTORY}" for d in runs],
            "figures": dict(params.figures[name]),
            "tuning": params.tuning.get(name),  # a tuned study's tuning.csv
            "figure_pdfs": dict(params.figure_pdfs[name]),
            "paper_tables": dict(params.paper_tables[name]),
        })
    render_report(
        studies,
        snakemake.output.html,  # noqa: F821
        title=params.title,
        config_hash=params.config_hash,
        confidence=params.confidence,
        # The rule lists the datasets' meta.json files in the order of params.datasets.
        dataset_meta=dict(zip(params.datasets, inputs.meta)),
    )
