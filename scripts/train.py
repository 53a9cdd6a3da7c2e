"""Snakemake entry point: train one (study, variant, seed) run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - the cnnablate package
from cnnablate.workflow.smk import log_to  # noqa: E402

resources = snakemake.config.get("resources", {})  # noqa: F821
job = snakemake.resources  # noqa: F821
# a whole GPU, or a slot of a shared one (runs_per_gpu; cnnablate.workflow.resources.gpus_of)
gpus = int(job.get("gpu", 0) or 0) or int(job.get("gpu_slot", 0) or 0)

# A known user error (no GPU, missing data, ...) ends the job with one console line; see smk.py.
with log_to(snakemake.log[0]) as log:  # noqa: F821
    from cnnablate.training.gpu import claim_gpus

    if snakemake.params.run.get("synthetic"):  # noqa: F821
        log("SYNTHETIC data: smoke mode's generated stand-in (the real data is absent)")

    # Before TensorFlow starts: it only ever sees the GPUs in CUDA_VISIBLE_DEVICES then.
    with claim_gpus(
        gpus,
        log=log,
        runs_per_gpu=resources.get("runs_per_gpu", 1),
        allow_cpu_fallback=resources.get("allow_cpu_fallback", False),
    ):
        from cnnablate.training.train import RunPaths, train_run

        out = snakemake.output  # noqa: F821
        train_run(
            dict(snakemake.params.run),  # noqa: F821
            Path(snakemake.input.meta).parent,  # noqa: F821
            RunPaths(Path(out.history), Path(out.metrics), Path(out.model),
                     Path(out.predictions)),
            threads=snakemake.threads,  # noqa: F821
            log=log,
        )
