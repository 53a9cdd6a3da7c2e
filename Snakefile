# cnnablate: ablation studies of CNN building blocks.
# config -> datasets prepared once -> one training job per (study, variant, seed)
#        (a tuned study: first its tuning runs and their selection, rules/tuning.smk)
#        -> per-study tables -> figures -> report.
from snakemake.utils import min_version, validate

min_version("9.0")


# The default study, unless the command line names config files (`--configfile studies/X.yaml`):
# those then replace it instead of being deep-merged into it (which would run both).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


wildcard_constraints:
    study=r"[A-Za-z0-9_.-]+",
    variant=r"[A-Za-z0-9_.-]+",
    seed=r"\d+",
    dataset=r"[A-Za-z0-9_.-]+",


include: "rules/common.smk"
include: "rules/rounds.smk"
include: "rules/tuning_plan.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/tuning.smk"
include: "rules/aggregate.smk"
include: "rules/report.smk"


# Light steps run where Snakemake runs (on a cluster: the login node, which also has the
# internet access a download needs), not as cluster jobs.
localrules:
    download_archive,
    aggregate,
    paper_table,
    figures,
    report,
    all,


onstart:
    print(f"cnnablate: {len(RUNS)} runs in {len(STUDIES)} studies"
          + (f" ({len(SHARED)} the same as another study's run: trained once, copied)"
             if SHARED else ""))


onerror:
    print(failure_advice(log))


rule all:
    default_target: True
    input:
        rules.report.output.html,
