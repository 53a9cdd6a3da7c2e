# Figures per study, then one HTML report over all studies (no TensorFlow in these rules).

FIGURES = tuple(FIGURE_REGISTRY)  # cnnablate.workflow.catalog.FIGURES: one entry per figure
FIGURE_PATH = LAYOUT.figure("{study}", "{name}")


rule figures:
    input:
        metrics=lambda wc: [f"{run_dir(run)}/metrics.json" for run in study_runs(wc.study)],
        history=lambda wc: [f"{run_dir(run)}/history.csv" for run in study_runs(wc.study)],
        summary=rules.aggregate.output.summary,
        stale=lambda wc: stale_marker(wc.study),
    output:
        **{
            name: report(
                FIGURE_PATH.format(study="{study}", name=name),
                caption=f"../{FIGURE_REGISTRY[name].caption}",
                category="{study}",
                subcategory="figures",
            )
            for name in FIGURES
        },
    params:
        study=lambda wc: study_settings(wc.study),
        confidence=config["report"]["confidence"],
        code=CODE.figures(),
    message:
        "figures study={wildcards.study} (log: {log})"
    log:
        f"{LOGS}/figures/{{study}}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figures.py"


rule report:
    input:
        summary=expand(rules.aggregate.output.summary, study=STUDIES),
        paired=expand(rules.aggregate.output.paired, study=STUDIES),
        runs=expand(rules.aggregate.output.runs, study=STUDIES),
        figures=expand(rules.figures.output, study=STUDIES),
        # Class names, counts and checksum of each dataset, for the report's dataset facts.
        meta=[f"{data_dir(dataset)}/meta.json" for dataset in DATASETS],
        template=source_file("report/templates/index.html.j2"),
        stale=lambda wc: [marker for study in STUDIES for marker in stale_marker(study)],
        # inlined into the page by cnnablate/reporting/interactive.py
        interactive=[
            source_file(f"report/{f}")
            for f in ("interactive.js", "vendor/uplot/uPlot.iife.min.js",
                      "vendor/uplot/uPlot.min.css")
        ],
        rounds=lambda wc: [path for study in STUDIES for path in round_files(study)],
    output:
        html=LAYOUT.report,
    params:
        studies=[study_settings(study) for study in STUDIES],
        # study_runs: the runs adaptive seeds actually ran (known once their rounds are decided)
        runs=lambda wc: {
            study: [[run["variant"], run["seed"], run_dir(run)] for run in study_runs(study)]
            for study in STUDIES
        },
        figures={
            study: {name: FIGURE_PATH.format(study=study, name=name) for name in FIGURES}
            for study in STUDIES
        },
        datasets=DATASETS,
        title=config["report"]["title"],
        confidence=config["report"]["confidence"],
        config_hash=cnnablate_config.config_hash(config),
        code=CODE.report(),
    message:
        "report (log: {log})"
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"
