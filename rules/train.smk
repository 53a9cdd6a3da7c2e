# One job per (study, variant, seed). The resolved run config is a param, so editing one
# variant reruns only that variant's jobs.
from cnnablate.workflow.resources import rule_resources, train_conda_env
from cnnablate.base.rounds import is_adaptive


rule train:
    input:
        meta=lambda wc: data_file(job_run(wc)["dataset"], META),
        # a tuned variant's deciding runs wait for its selection (rules/tuning_plan.smk)
        selection=lambda wc: selection_input(wc),
    output:
        **{
            key: LAYOUT.run_file("{study}", "{variant}", "{seed}", name)
            for key, name in RUN_OUTPUTS.items()
        },
    params:
        # a tuned variant's at its selected candidate (rules/tuning_plan.smk)
        run=lambda wc: deciding_run(wc),
        code=lambda wc: CODE.train(job_run(wc)),
    threads: config["resources"]["train_threads"]
    # Runs of adaptive-seed studies first: their next round waits on this round's runs, so
    # starting them early lets the next round overlap other studies' runs instead of trailing
    # them (BENCHMARKS.md section 1).
    priority: lambda wc: 1 if is_adaptive(config["studies"][wc.study].get("seeds")) else 0
    resources:
        # mem_mb, runtime, gpu (+ cpus_per_gpu on GPU jobs): the config's `resources:` where
        # set, else estimated per run from image size, epochs, images and model
        **rule_resources(job_run, config["resources"]),
    message:
        "train study={wildcards.study} variant={wildcards.variant} seed={wildcards.seed} (log: {log})"
    log:
        LAYOUT.run_log("{study}", "{variant}", "{seed}"),
    benchmark:
        LAYOUT.run_benchmark("{study}", "{variant}", "{seed}")
    conda:
        # tensorflow[and-cuda] for runs with gpu >= 1, tensorflow-cpu for the others; on the
        # JAX backend (train.backend) jax[cuda12] or jax, without TensorFlow
        train_conda_env(job_run, config["resources"])
    script:
        "../scripts/train.py"


# A run identical to an earlier study's (SHARED, rules/common.smk) is not trained again: its
# folder gets a relabelled copy of that run's files. Its output names only the shared runs.
rule share_run:
    input:
        **{
            key: lambda wc, name=name: f"{run_dir(shared_source(wc))}/{name}"
            for key, name in RUN_OUTPUTS.items()
        },
    output:
        **{key: f"{LAYOUT.runs}/{{run}}/{name}" for key, name in RUN_OUTPUTS.items()},
    wildcard_constraints:
        run="|".join(re.escape(LAYOUT.run_key(*ident)) for ident in SHARED) or "(?!)",
    params:
        run=lambda wc: RUN_BY_ID[LAYOUT.parse_run_key(wc.run)],
        trained_as=lambda wc: run_dir(shared_source(wc)),
        code=CODE.share(),
    message:
        "share_run run={wildcards.run} (trained once, as {params.trained_as})"
    log:
        LAYOUT.log("share", "{run}"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/share_run.py"


ruleorder: share_run > train


localrules:
    share_run,
