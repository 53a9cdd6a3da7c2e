# Per-study tables: one row per run, one row per variant, and the paired comparisons.


rule aggregate:
    input:
        metrics=lambda wc: [f"{run_dir(run)}/{METRICS}" for run in study_runs(wc.study)],
        history=lambda wc: [f"{run_dir(run)}/{HISTORY}" for run in study_runs(wc.study)],
        stale=lambda wc: stale_marker(wc.study),
        # the headline split's labels: with each run's predictions.npy (where that split is
        # fixed) the decisions count its images as well as the seeds
        labels=lambda wc: headline_labels(wc.study),
    output:
        runs=report(
            LAYOUT.table("{study}", "runs"),
            caption="../report/captions/runs.rst",
            category="{study}",
            subcategory="tables",
        ),
        summary=report(
            LAYOUT.table("{study}", "summary"),
            caption="../report/captions/summary.rst",
            category="{study}",
            subcategory="tables",
        ),
        paired=report(
            LAYOUT.table("{study}", "paired"),
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
        LAYOUT.log("aggregate", "{study}"),
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
        # a tuned study's selection: the caption gives each variant's selected values
        tuning=lambda wc: tuning_files(wc.study),
    output:
        tex=LAYOUT.paper_table("{study}", "tex"),
        md=LAYOUT.paper_table("{study}", "md"),
    params:
        study=lambda wc: study_settings(wc.study),
        confidence=config["report"]["confidence"],
        # each variant's learning rate as configured (a tuned one's: tuning.csv's selection)
        learning_rates=lambda wc: {
            run["variant"]: run["train"].get("learning_rate") for run in runs_of(wc.study)
        },
        code=CODE.paper_table(),
    message:
        "paper_table study={wildcards.study} (log: {log})"
    log:
        LAYOUT.log("paper_table", "{study}"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/paper_table.py"


# A new marker for a study whose results are missing under built ones (stale_marker,
# rules/common.smk): made here, by a job, so that planning (`snakemake -n`) writes nothing.
rule mark_stale:
    output:
        marker=LAYOUT.study_file("{study}", f"{freshness.MARKER_PREFIX}{{digest}}"),
    wildcard_constraints:
        digest=r"[0-9a-f]{12}",
    message:
        "mark_stale study={wildcards.study} (results missing under built ones; log: {log})"
    log:
        LAYOUT.log("stale", "{study}-{digest}"),
    # What is missing is read here, not given as a param: a param is recorded, and once the
    # files are rebuilt its change (to nothing missing) would rerun this job and all above it.
    run:
        freshness.mark_stale(output.marker, STALE.get(wildcards.study, []))


localrules:
    mark_stale,
