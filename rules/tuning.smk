# Fair comparisons (`tune:`): the tuning runs (the train rule's, in their own folders) and
# the per-study selection checkpoint; what they plan with is in rules/tuning_plan.smk.


use rule train as train_tuning with:
    input:
        meta=lambda wc: data_file(tuning_run(wc)["dataset"], META),
        # halving: the last rung continues the run from its previous rung (rules/tuning_plan.smk)
        previous=previous_rung,
    output:
        **{
            key: LAYOUT.run_file("{study}", "{variant}", "{seed}", name, "{candidate}")
            for key, name in RUN_OUTPUTS.items()
        },
    params:
        run=tuning_run,
        code=lambda wc: CODE.train(tuning_run(wc)),
    # before every deciding run: a tuned study's deciding runs wait for its selection
    priority: 2
    resources:
        **rule_resources(tuning_run, config["resources"]),
    wildcard_constraints:
        candidate=r"[A-Za-z0-9_.-]+",
    message:
        "train_tuning study={wildcards.study} variant={wildcards.variant} "
        "candidate={wildcards.candidate} seed={wildcards.seed} (log: {log})"
    log:
        LAYOUT.run_log("{study}", "{variant}", "{seed}", "{candidate}"),
    benchmark:
        LAYOUT.run_benchmark("{study}", "{variant}", "{seed}", "{candidate}")
    conda:
        # the train rule's choice, by the tuning run's own backend and GPU
        train_conda_env(tuning_run, config["resources"])


# Halving's rungs below the last (`schedule: halving`, rules/tuning_plan.smk): the run trained
# to `rung` epochs (its learning-rate schedule still the whole run's), a snapshot of its
# history and metrics in rung-{rung}/, its resume state kept in the run folder for the next rung.
use rule train_tuning as train_rung with:
    output:
        **{
            name: LAYOUT.run_file(
                "{study}", "{variant}", "{seed}", f"rung-{{rung}}/{file}", "{candidate}")
            for name, file in (("history", HISTORY), ("metrics", METRICS))
        },
    params:
        run=tuning_run,
        code=lambda wc: CODE.train(tuning_run(wc)),
        stop_after=lambda wc: int(wc.rung),
    wildcard_constraints:
        candidate=r"[A-Za-z0-9_.-]+",
        rung=r"\d+",
    message:
        "train_rung study={wildcards.study} variant={wildcards.variant} "
        "candidate={wildcards.candidate} seed={wildcards.seed} rung={wildcards.rung} "
        "(log: {log})"
    log:
        LAYOUT.run_log("{study}", "{variant}", "{seed}", "{candidate}").removesuffix(".log")
        + ".rung-{rung}.log",
    benchmark:
        LAYOUT.run_benchmark("{study}", "{variant}", "{seed}", "{candidate}").removesuffix(
            ".tsv") + ".rung-{rung}.tsv"


# After each rung but the last: which candidates continue (cnnablate.decisions.stages).
checkpoint tuning_rung:
    input:
        metrics=lambda wc: rung_inputs(wc.study, int(wc.rung)),
    output:
        state=LAYOUT.study_file("{study}", "tuning/rung{rung}.json"),
    params:
        specs=lambda wc: TUNING.specs[wc.study],
        rung=lambda wc: int(wc.rung),
        code=CODE.select_tuning(),
    wildcard_constraints:
        rung=r"\d+",
    message:
        "tuning_rung study={wildcards.study} rung={wildcards.rung} (log: {log})"
    log:
        LAYOUT.log("tuning", "{study}.rung{rung}"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/tuning_stage.py"


# `zoom:`: new candidates around each variant's pick after the last rung (or the grid).
checkpoint tuning_zoom:
    input:
        metrics=lambda wc: rung_inputs(wc.study, n_rungs(wc.study)),
    output:
        state=LAYOUT.study_file("{study}", "tuning/zoom.json"),
    params:
        specs=lambda wc: TUNING.specs[wc.study],
        code=CODE.select_tuning(),
    message:
        "tuning_zoom study={wildcards.study} (log: {log})"
    log:
        LAYOUT.log("tuning", "{study}.zoom"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/tuning_stage.py"


checkpoint select_tuning:
    input:
        # the grid's runs; under halving every rung's, and the zoom's (rules/tuning_plan.smk)
        metrics=lambda wc: selection_inputs(wc.study),
    output:
        selection=LAYOUT.tuning_selection("{study}"),
        table=LAYOUT.tuning_table("{study}"),
    params:
        specs=lambda wc: TUNING.specs[wc.study],
        code=CODE.select_tuning(),
    message:
        "select_tuning study={wildcards.study} (log: {log})"
    log:
        LAYOUT.log("tuning", "{study}"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/select_tuning.py"


# A selection reads a few JSON files: it runs where Snakemake runs, never as a cluster job.
localrules:
    select_tuning,
    tuning_rung,
    tuning_zoom,
