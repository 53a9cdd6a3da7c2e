# Figures per study, then one HTML report over all studies (no TensorFlow in these rules).

FIGURES = tuple(FIGURE_REGISTRY)  # cnnablate.base.catalog.FIGURES: one entry per figure
TUNING_FIGURES = tuple(TUNING_FIGURE_REGISTRY)  # catalog.TUNING_FIGURES: tuned studies only
FIGURE_PATH = LAYOUT.figure("{study}", "{name}")
# The same figure as a vector PDF beside the PNG (cnnablate.reporting.figures.save_figure).
FIGURE_PDF_PATH = FIGURE_PATH.removesuffix(".png") + ".pdf"
TUNING_TABLE = LAYOUT.tuning_table("{study}")  # the selection step's (issue #21)


rule figures:
    input:
        metrics=lambda wc: [f"{run_dir(run)}/{METRICS}" for run in study_runs(wc.study)],
        history=lambda wc: [f"{run_dir(run)}/{HISTORY}" for run in study_runs(wc.study)],
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
        **{f"{name}_pdf": FIGURE_PDF_PATH.format(study="{study}", name=name) for name in FIGURES},
    params:
        study=lambda wc: study_settings(wc.study),
        confidence=config["report"]["confidence"],
        code=CODE.figures(),
    message:
        "figures study={wildcards.study} (log: {log})"
    log:
        LAYOUT.log("figures", "{study}"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figures.py"


# A tuned study's own figures (the tuning figure), drawn by the same script from its tuning.csv
# too; a rule of their own so that an untuned study's figures job is exactly as before.
rule tuning_figures:
    input:
        metrics=lambda wc: [f"{run_dir(run)}/{METRICS}" for run in study_runs(wc.study)],
        history=lambda wc: [f"{run_dir(run)}/{HISTORY}" for run in study_runs(wc.study)],
        summary=rules.aggregate.output.summary,
        tuning=TUNING_TABLE,
        stale=lambda wc: stale_marker(wc.study),
    output:
        **{
            name: report(
                FIGURE_PATH.format(study="{study}", name=name),
                caption=f"../{TUNING_FIGURE_REGISTRY[name].caption}",
                category="{study}",
                subcategory="figures",
            )
            for name in TUNING_FIGURES
        },
        **{
            f"{name}_pdf": FIGURE_PDF_PATH.format(study="{study}", name=name)
            for name in TUNING_FIGURES
        },
    params:
        study=lambda wc: study_settings(wc.study),
        confidence=config["report"]["confidence"],
        code=CODE.tuning_figures(),
    message:
        "tuning figures study={wildcards.study} (log: {log})"
    log:
        LAYOUT.log("figures", "{study}-tuning"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/figures.py"


rule report:
    input:
        summary=expand(rules.aggregate.output.summary, study=STUDIES),
        paired=expand(rules.aggregate.output.paired, study=STUDIES),
        runs=expand(rules.aggregate.output.runs, study=STUDIES),
        figures=[path for study in STUDIES for path in study_figure_paths(study).values()],
        tuning=[TUNING_TABLE.format(study=study) for study in STUDIES if tuned(study)],
        figure_pdfs=[vector for study in STUDIES for vector in study_figure_pdfs(study).values()],
        paper_tables=expand(rules.paper_table.output, study=STUDIES),
        # Class names, counts and checksum of each dataset, for the report's dataset facts.
        meta=[data_file(dataset, META) for dataset in DATASETS],
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
        # copies of the tables, paper tables and run histories the page links: report/ works
        # on its own (cnnablate.reporting.report.Bundle)
        bundle=directory(LAYOUT.report_bundle),
    params:
        studies=[study_settings(study) for study in STUDIES],
        # study_runs: the runs adaptive seeds actually ran (known once their rounds are decided)
        runs=lambda wc: {
            study: [[run["variant"], run["seed"], run_dir(run)] for run in study_runs(study)]
            for study in STUDIES
        },
        figures={study: study_figure_paths(study) for study in STUDIES},
        tuning={study: TUNING_TABLE.format(study=study) for study in STUDIES if tuned(study)},
        figure_pdfs={study: study_figure_pdfs(study) for study in STUDIES},
        paper_tables={
            study: {kind: path.format(study=study) for kind, path in rules.paper_table.output.items()}
            for study in STUDIES
        },
        datasets=DATASETS,
        title=config["report"]["title"],
        confidence=config["report"]["confidence"],
        config_hash=config_hash(config),
        code=CODE.report(),
    message:
        "report (log: {log})"
    log:
        LAYOUT.report_log,
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"
