# Each dataset is prepared once, at native resolution, for every study that uses it.


rule download_archive:
    output:
        "results/downloads/{archive}",
    wildcard_constraints:
        archive="|".join(re.escape(name) for name in ARCHIVE_BY_FILENAME),
    params:
        entry=lambda wc: ARCHIVE_BY_FILENAME[wc.archive],
    message:
        "download_archive archive={wildcards.archive} (log: {log})"
    log:
        "logs/download/{archive}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/download_archive.py"


rule prepare_dataset:
    input:
        archive=archive_of,
    output:
        **{
            f"{split}_{kind}": f"results/data/{{dataset}}/{split}_{kind}.npy"
            for split in ("train", "val", "test")
            for kind in ("images", "labels")
        },
        meta="results/data/{dataset}/meta.json",
    params:
        spec=lambda wc: cnnablate_config.prepared_spec(config["datasets"][wc.dataset]),
        code=lambda wc: CODE.prepare(config["datasets"][wc.dataset]["source"]),
    message:
        "prepare_dataset dataset={wildcards.dataset} (log: {log})"
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "results/benchmarks/data/{dataset}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/prepare_dataset.py"


# Smoke mode only, for a dataset whose real files are absent (rules/common.smk, SYNTHETIC).
rule prepare_synthetic:
    output:
        **{
            f"{split}_{kind}": f"{LAYOUT.data_dir('{dataset}', synthetic=True)}/{split}_{kind}.npy"
            for split in ("train", "val", "test")
            for kind in ("images", "labels")
        },
        meta=f"{LAYOUT.data_dir('{dataset}', synthetic=True)}/meta.json",
    params:
        spec=lambda wc: cnnablate_config.prepared_spec(config["datasets"][wc.dataset]),
        code=lambda wc: CODE.prepare_synthetic(config["datasets"][wc.dataset]["source"]),
    message:
        "prepare_synthetic dataset={wildcards.dataset} (SYNTHETIC; log: {log})"
    log:
        f"{LOGS}/synthetic-data/{{dataset}}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/prepare_synthetic.py"
