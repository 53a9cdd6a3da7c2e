# Per-study tables: one row per run, one row per variant, and the paired comparisons.


rule aggregate:
    input:
        metrics=lambda wc: [f"{run_dir(run)}/metrics.json" for run in runs_of(wc.study)],
        history=lambda wc: [f"{run_dir(run)}/history.csv" for run in runs_of(wc.study)],
        code=AGGREGATE_CODE,
    output:
        runs="results/studies/{study}/runs.csv",
        summary="results/studies/{study}/summary.csv",
        paired="results/studies/{study}/paired.csv",
    params:
        study=lambda wc: study_settings(wc.study),
        confidence=config["report"]["confidence"],
    log:
        "logs/aggregate/{study}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/aggregate.py"
