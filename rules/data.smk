# Each dataset is prepared once, at native resolution, for every study that uses it.


rule download_archive:
    output:
        LAYOUT.download("{archive}"),
    wildcard_constraints:
        archive="|".join(re.escape(name) for name in ARCHIVE_BY_FILENAME),
    params:
        entry=lambda wc: ARCHIVE_BY_FILENAME[wc.archive],
    message:
        "download_archive archive={wildcards.archive} (log: {log})"
    log:
        LAYOUT.data_log("download", "{archive}"),
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/download_archive.py"


rule prepare_dataset:
    input:
        archive=archive_of,
    output:
        **{key: LAYOUT.data_file("{dataset}", name) for key, name in SPLIT_FILES.items()},
        meta=LAYOUT.data_file("{dataset}", META),
    params:
        spec=lambda wc: cnnablate_config.prepared_spec(config["datasets"][wc.dataset]),
        code=lambda wc: CODE.prepare(config["datasets"][wc.dataset]["source"]),
    message:
        "prepare_dataset dataset={wildcards.dataset} (log: {log})"
    log:
        LAYOUT.data_log("data", "{dataset}"),
    benchmark:
        LAYOUT.data_benchmark("{dataset}")
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/prepare_dataset.py"


# Smoke mode only, for a dataset whose real files are absent (rules/common.smk, SYNTHETIC).
rule prepare_synthetic:
    output:
        **{
            key: LAYOUT.data_file("{dataset}", name, synthetic=True)
            for key, name in SPLIT_FILES.items()
        },
        meta=LAYOUT.data_file("{dataset}", META, synthetic=True),
    params:
        spec=lambda wc: cnnablate_config.prepared_spec(config["datasets"][wc.dataset]),
        code=lambda wc: CODE.prepare_synthetic(config["datasets"][wc.dataset]["source"]),
    message:
        "prepare_synthetic dataset={wildcards.dataset} (SYNTHETIC; log: {log})"
    log:
        LAYOUT.synthetic_log("{dataset}"),
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/prepare_synthetic.py"
