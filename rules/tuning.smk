# Fair comparisons (`tune:`): the tuning runs (the train rule's, in their own folders) and
# the per-study selection checkpoint; what they plan with is in rules/tuning_plan.smk.


use rule train as train_tuning with:
    input:
        meta=lambda wc: data_file(tuning_run(wc)["dataset"], META),
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


checkpoint select_tuning:
    input:
        metrics=lambda wc: [
            f"{tuning_run_dir(run)}/{METRICS}"
            for run in TUNING.runs if run["study"] == wc.study
        ],
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
