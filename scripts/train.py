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
        from cnnablate.base.layout import resume_dir
        from cnnablate.training.train import RunPaths, train_run

        out = dict(snakemake.output.items())  # noqa: F821
        params = dict(snakemake.params.items())  # noqa: F821
        # a halving rung (rules/tuning.smk, train_rung): a snapshot of the run at that epoch,
        # in a folder of its own, the run folder's resume state kept for the next rung
        rung = params.get("stop_after")
        run_folder = Path(out["metrics"]).parent.parent if rung else None
        train_run(
            dict(params["run"]),
            Path(snakemake.input.meta).parent,  # noqa: F821
            RunPaths(Path(out["history"]), Path(out["metrics"]),
                     Path(out["model"]) if "model" in out else None,
                     Path(out["predictions"]) if "predictions" in out else None,
                     resume_dir(run_folder) if run_folder else None),
            threads=snakemake.threads,  # noqa: F821
            log=log,
            stop_after=rung,
            code=params.get("code"),
        )
