# Per-study tables: one row per run, one row per variant, and the paired comparisons.


rule aggregate:
    input:
        metrics=lambda wc: [f"{run_dir(run)}/metrics.json" for run in study_runs(wc.study)],
        history=lambda wc: [f"{run_dir(run)}/history.csv" for run in study_runs(wc.study)],
        stale=lambda wc: stale_marker(wc.study),
    output:
        runs=report(
            f"{RESULTS}/studies/{{study}}/runs.csv",
            caption="../report/captions/runs.rst",
            category="{study}",
            subcategory="tables",
        ),
        summary=report(
            f"{RESULTS}/studies/{{study}}/summary.csv",
            caption="../report/captions/summary.rst",
            category="{study}",
            subcategory="tables",
        ),
        paired=report(
            f"{RESULTS}/studies/{{study}}/paired.csv",
            caption="../report/captions/paired.rst",
            category="{study}",
            subcategory="tables",
        ),
    params:
        study=lambda wc: study_settings(wc.study),
        confidence=config["report"]["confidence"],
        code=CODE.aggregate(),
    message:
        "aggregate study={wildcards.study} (log: {log})"
    log:
        f"{LOGS}/aggregate/{{study}}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/aggregate.py"


# Paper-ready tables of a study (cnnablate/reporting/paper.py): LaTeX (booktabs) and Markdown,
# from the study's tables only, so they are rebuilt only when those (or its settings) change.
rule paper_table:
    input:
        runs=rules.aggregate.output.runs,
        summary=rules.aggregate.output.summary,
        paired=rules.aggregate.output.paired,
    output:
        tex=f"{RESULTS}/studies/{{study}}/table.tex",
        md=f"{RESULTS}/studies/{{study}}/table.md",
    params:
        study=lambda wc: study_settings(wc.study),
        confidence=config["report"]["confidence"],
        code=CODE.paper_table(),
    message:
        "paper_table study={wildcards.study} (log: {log})"
    log:
        f"{LOGS}/paper_table/{{study}}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/paper_table.py"
