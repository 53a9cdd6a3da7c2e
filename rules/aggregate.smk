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
