# Fair comparisons (`tune:`), the planning side (the rules: rules/tuning.smk). Each tuned
# variant trains one run per (candidate, tuning seed) through the train rule, a per-study
# checkpoint selects each variant's candidate (cnnablate.decisions.tuning.select: mean over
# the tuning seeds), and the variant's deciding runs then train at it. The deciding runs
# depend on the selection through their `run` param (the resolved run config, holding the
# selected values) and on the selection file as an `ancient` input: adding a candidate
# retrains a variant's deciding runs only when its selection changed, never because the
# selection file was rewritten.
from snakemake.exceptions import IncompleteCheckpointException

TUNING_RUN_BY_ID = {
    (run["study"], run["variant"], run["tuning"]["candidate"], int(run["seed"])): run
    for run in TUNING.runs
}


def tuning_run_dir(run):
    return LAYOUT.run_dir(*LAYOUT.of(run))


def tuning_run(wildcards):
    return TUNING_RUN_BY_ID[
        (wildcards.study, wildcards.variant, wildcards.candidate, int(wildcards.seed))
    ]


def selection_path(study):
    return LAYOUT.tuning_selection(study)


def tuning_files(study):
    """A tuned study's tuning.csv once its selection is made (for steps that read it); none
    for an untuned study. Lists the checkpoint's output, so Snakemake waits for it."""
    if study not in TUNING.specs:
        return []
    return [checkpoints.select_tuning.get(study=study).output.table]


def is_tuned(study, variant):
    return variant in TUNING.specs.get(study, {})


def _chosen(study, variant):
    """A tuned variant's entry of its study's selection, as the checkpoint wrote it. While the
    checkpoint is still to (re)run, the entry on disk, if any: a dry run then shows no
    deciding run as changed before that is known, and Snakemake re-evaluates these jobs once
    the checkpoint ran. Without one (a first run, a newly tuned variant), the job waits."""
    try:
        path = checkpoints.select_tuning.get(study=study).output.selection
    except IncompleteCheckpointException:
        path = selection_path(study)
        previous = (_json.loads(_Path(path).read_text())["variants"].get(variant)
                    if os.path.exists(path) else None)
        if previous is None:
            raise
        return previous
    return _json.loads(_Path(path).read_text())["variants"][variant]


def deciding_run(wildcards):
    """A deciding run's resolved config: a tuned variant's at its selected candidate."""
    run = job_run(wildcards)
    if not is_tuned(wildcards.study, wildcards.variant):
        return run
    chosen = _chosen(wildcards.study, wildcards.variant)
    return cnnablate_config.apply_selection(run, chosen["values"], config["smoke_settings"])


def selection_input(wildcards):
    """[the study's selection] for a tuned variant's deciding run, as `ancient` (see top)."""
    if not is_tuned(wildcards.study, wildcards.variant):
        return []
    _chosen(wildcards.study, wildcards.variant)  # raises (so waits) while none is known
    return [ancient(selection_path(wildcards.study))]


# The cost before it is spent (the planning summary; `snakemake -n` shows it too): per tuned
# study its tuning runs, their share of its training epochs, and that the deciding runs follow.
if workflow.is_main_process:
    for _line in cnnablate_config.planning_summary(RUNS, TUNING, LAYOUT):
        print(_line, file=sys.stderr)
