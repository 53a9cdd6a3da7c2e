# One job per (study, variant, seed). The resolved run config is a param, so editing one
# variant reruns only that variant's jobs.
from cnnablate.training.backend import conda_env_by_backend
from cnnablate.training.resources import conda_env_by_gpu, rule_resources
from cnnablate.decisions.rounds import is_adaptive


rule train:
    input:
        meta=lambda wc: f"{data_dir(RUN_BY_ID[(wc.study, wc.variant, int(wc.seed))]['dataset'])}/meta.json",
    output:
        history=f"{RESULTS}/runs/{{study}}/{{variant}}/seed{{seed}}/history.csv",
        metrics=f"{RESULTS}/runs/{{study}}/{{variant}}/seed{{seed}}/metrics.json",
        model=f"{RESULTS}/runs/{{study}}/{{variant}}/seed{{seed}}/model.keras",
    params:
        run=lambda wc: RUN_BY_ID[(wc.study, wc.variant, int(wc.seed))],
        code=lambda wc: CODE.train(RUN_BY_ID[(wc.study, wc.variant, int(wc.seed))]),
    threads: config["resources"]["train_threads"]
    # Runs of adaptive-seed studies first: their next round waits on this round's runs, so
    # starting them early lets the next round overlap other studies' runs instead of trailing
    # them (BENCHMARKS.md section 1).
    priority: lambda wc: 1 if is_adaptive(config["studies"][wc.study].get("seeds")) else 0
    resources:
        # mem_mb, runtime, gpu (+ cpus_per_gpu on GPU jobs): the config's `resources:` where
        # set, else estimated per run from image size, epochs, images and model
        **rule_resources(
            lambda wc: RUN_BY_ID[(wc.study, wc.variant, int(wc.seed))], config["resources"]
        ),
    message:
        "train study={wildcards.study} variant={wildcards.variant} seed={wildcards.seed} (log: {log})"
    log:
        f"{LOGS}/train/{{study}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{study}}/{{variant}}/seed{{seed}}.tsv"
    conda:
        # tensorflow[and-cuda] for runs with gpu >= 1, tensorflow-cpu for the others; on the
        # JAX backend (train.backend) jax[cuda12] or jax, without TensorFlow
        conda_env_by_backend(
            lambda wc: RUN_BY_ID[(wc.study, wc.variant, int(wc.seed))],
            {
                "tensorflow": conda_env_by_gpu(
                    lambda wc: RUN_BY_ID[(wc.study, wc.variant, int(wc.seed))],
                    config["resources"], "../envs/train.yaml", "../envs/train-gpu.yaml",
                ),
                "jax": conda_env_by_gpu(
                    lambda wc: RUN_BY_ID[(wc.study, wc.variant, int(wc.seed))],
                    config["resources"], "../envs/train-jax.yaml", "../envs/train-jax-gpu.yaml",
                ),
            },
        )
    script:
        "../scripts/train.py"
