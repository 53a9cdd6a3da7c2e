# Each dataset is prepared once, at native resolution, for every study that uses it.
from cnnablate.data.archive import ARCHIVES

ARCHIVE_BY_FILENAME = {entry["filename"]: entry for entry in ARCHIVES.values()}


def archive_of(wildcards):
    """The verified source archive a dataset needs: the user's copy or the download's."""
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] not in ARCHIVES:
        return []
    return spec.get("archive") or f"results/downloads/{ARCHIVES[spec['source']]['filename']}"


rule download_archive:
    output:
        "results/downloads/{archive}",
    wildcard_constraints:
        archive="|".join(re.escape(name) for name in ARCHIVE_BY_FILENAME),
    params:
        entry=lambda wc: ARCHIVE_BY_FILENAME[wc.archive],
    log:
        "logs/download/{archive}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/download_archive.py"


rule prepare_dataset:
    input:
        archive=archive_of,
        code=PREPARE_CODE,
    output:
        **{
            f"{split}_{kind}": f"results/data/{{dataset}}/{split}_{kind}.npy"
            for split in ("train", "val", "test")
            for kind in ("images", "labels")
        },
        meta="results/data/{dataset}/meta.json",
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "results/benchmarks/data/{dataset}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/prepare_dataset.py"
