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
    """A tuning run's resolved config: a grid candidate's, or (zoom) one the zoom checkpoint
    named, built from its variant's first candidate at the new values."""
    ident = (wildcards.study, wildcards.variant, wildcards.candidate, int(wildcards.seed))
    if ident not in TUNING_RUN_BY_ID:
        TUNING_RUN_BY_ID.update(_zoom_runs(wildcards.study))
    return TUNING_RUN_BY_ID[ident]


# --- Stages of a study's tuning (issue #31; cnnablate.decisions.stages) ----------------------
# `schedule: halving`: rung r's surviving candidates train to rungs[r] epochs (the train_rung
# rule: a snapshot in the run folder's rung-{epochs}/, the resume state kept), the checkpoint
# tuning_rung promotes the best `keep` fraction, and those continue their own runs; the last
# rung is the run's own files (train_tuning). `zoom: k`: the checkpoint tuning_zoom names new
# candidates around each variant's pick, trained the whole budget; select_tuning then picks the
# best of everything that trained the whole budget.
from cnnablate.decisions import stages as tuning_stages  # noqa: E402


def tune_spec(study):
    """The study's schedule (the same for every variant: set on the study's `tune:` only)."""
    return next(iter(TUNING.specs[study].values()))


def n_rungs(study):
    return len(tune_spec(study)["rungs"])


def rung_state(study, rung):
    path = checkpoints.tuning_rung.get(study=study, rung=rung).output.state
    return _json.loads(_Path(path).read_text())


def rung_candidates(study, variant, rung):
    """The candidates of a variant that train to rung `rung` (1-based): all at the first,
    then those the previous rung's checkpoint promoted (Snakemake waits for it)."""
    if rung == 1:
        return [c["name"] for c in TUNING.specs[study][variant]["candidates"]]
    return rung_state(study, rung - 1)["variants"][variant]["promoted"]


def rung_file(run, rung, name=METRICS):
    """A tuning run's file at rung `rung`: a snapshot in rung-{epochs}/, the run's own at the
    last rung."""
    rungs = TUNING.specs[run["study"]][run["variant"]]["rungs"]
    if rung == len(rungs):
        return f"{tuning_run_dir(run)}/{name}"
    return f"{tuning_run_dir(run)}/{tuning_stages.rung_dir(rungs[rung - 1])}/{name}"


def rung_inputs(study, rung):
    """Every metrics file of rung `rung`: each surviving candidate on each tuning seed."""
    return [
        rung_file(TUNING_RUN_BY_ID[(study, variant, name, int(seed))], rung)
        for variant, spec in TUNING.specs[study].items()
        for name in rung_candidates(study, variant, rung)
        for seed in spec["seeds"]
    ]


def previous_rung(wildcards):
    """[the same run's previous rung snapshot] for a rung job or a last-rung train_tuning job
    of a halving candidate (it continues that run: same folder, resume state); none for a
    grid's or a zoom candidate's run."""
    spec = TUNING.specs[wildcards.study][wildcards.variant]
    if wildcards.candidate not in {c["name"] for c in spec["candidates"]}:
        return []  # a zoom candidate: trained straight through
    run = TUNING_RUN_BY_ID[
        (wildcards.study, wildcards.variant, wildcards.candidate, int(wildcards.seed))]
    rungs = spec["rungs"]
    rung = rungs.index(int(wildcards.rung)) + 1 if "rung" in wildcards.keys() else len(rungs)
    return [rung_file(run, rung - 1)] if rung > 1 else []


def zoom_path(study):
    return LAYOUT.study_file(study, tuning_stages.ZOOM_FILE)


def _zoom_runs(study):
    """The zoom candidates' tuning runs, from the zoom checkpoint's file (on disk by the time
    a job of theirs is planned), keyed as TUNING_RUN_BY_ID."""
    path = zoom_path(study)
    if not os.path.exists(path):
        return {}
    out = {}
    for variant, entry in _json.loads(_Path(path).read_text())["variants"].items():
        seeds = TUNING.specs[study][variant]["seeds"]
        template = next(r for r in TUNING.runs if (r["study"], r["variant"]) == (study, variant))
        for candidate in entry["candidates"]:
            for seed in seeds:
                run = cnnablate_config.tuning_run_at(template, candidate["values"],
                                                      config["smoke_settings"])
                out[(study, variant, candidate["name"], int(seed))] = {**run, "seed": int(seed)}
    return out


def zoom_inputs(study):
    """The zoom candidates' metrics (Snakemake waits for the zoom checkpoint); none without."""
    if not tune_spec(study).get("zoom"):
        return []
    path = checkpoints.tuning_zoom.get(study=study).output.state
    runs = _zoom_runs(study)
    TUNING_RUN_BY_ID.update(runs)
    return [f"{tuning_run_dir(run)}/{METRICS}" for run in runs.values()]


def selection_inputs(study):
    """What the final selection reads: every rung's metrics (the grid's: its one rung) and
    the zoom's."""
    return [f for rung in range(1, n_rungs(study) + 1) for f in rung_inputs(study, rung)] + \
        zoom_inputs(study)


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
