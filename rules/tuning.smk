# Fair comparisons (`tune:`): the tuning runs (the train rule's, in their own folders) and
# the per-study selection checkpoint; what they plan with is in rules/tuning_plan.smk.


use rule train as train_tuning with:
    input:
        meta=lambda wc: f"{data_dir(tuning_run(wc)['dataset'])}/meta.json",
    output:
        **{
            name: LAYOUT.run_file("{study}", "{variant}", "{seed}", file, "{candidate}")
            for name, file in ((f.split(".")[0], f) for f in RUN_FILES)
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
        conda_env_by_gpu(
            tuning_run, config["resources"], "../envs/train.yaml", "../envs/train-gpu.yaml",
        )


checkpoint select_tuning:
    input:
        metrics=lambda wc: [
            f"{tuning_run_dir(run)}/metrics.json"
            for run in TUNING.runs if run["study"] == wc.study
        ],
    output:
        selection=LAYOUT.study_file("{study}", "tuning/selection.json"),
        table=LAYOUT.study_file("{study}", "tuning.csv"),
    params:
        specs=lambda wc: TUNING.specs[wc.study],
        code=CODE.select_tuning(),
    message:
        "select_tuning study={wildcards.study} (log: {log})"
    log:
        f"{LOGS}/tuning/{{study}}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/select_tuning.py"


# A selection reads a few JSON files: it runs where Snakemake runs, never as a cluster job.
localrules:
    select_tuning,
