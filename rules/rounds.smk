# Adaptive seeds (`seeds: {initial, max, step}`): one checkpoint per (study, round) decides
# which variants run the next round's seeds (cnnablate.decisions.decide). Its small JSON is what the
# input functions below walk, so `snakemake -n` lists exactly the next round's runs and a
# resumed study never redoes a finished seed. A fixed seed list has no rounds.
import json as _json
from pathlib import Path as _Path

from cnnablate.base import rounds as seed_rounds  # noqa: E402


def headline_labels(study):
    """The labels of a study's headline split: with the runs' predictions.npy (written where
    that split is fixed) the decisions count its images as a sample too (issue #30)."""
    settings = study_settings(study)
    split = "test" if settings["eval_split"] == "test" else "val"
    return data_file(settings["dataset"], SPLIT_FILES[f"{split}_labels"])


def seed_spec(study):
    return study_settings(study)["decisions"]["seeds"]


def study_variants(study):
    return list(dict.fromkeys(run["variant"] for run in runs_of(study)))


def round_state(study, k):
    """The decision after round k (its checkpoint must have run; Snakemake waits for it)."""
    path = checkpoints.decide_round.get(study=study, round=k).output.state
    return _json.loads(_Path(path).read_text())


def study_rounds(study):
    """(round, variants running it) per round, walked by cnnablate.base.rounds.walk (as
    `status` walks them) over the decisions of the round checkpoints."""
    return seed_rounds.walk(seed_spec(study), study_variants(study),
                            lambda k: round_state(study, k)["continuing"])


def _round_runs(study, k, variants):
    return [RUN_BY_ID[(study, v, s)] for v in variants
            for s in seed_rounds.round_seeds(seed_spec(study), k)]


def runs_through(study, last):
    """The runs of rounds 1..last, as the decisions after rounds 1..last-1 call for them."""
    out = []
    for k, variants in study_rounds(study):
        out += _round_runs(study, k, variants)
        if k == last:
            break
    return out


def study_runs(study):
    """Every run a study's tables use: its seed list, or (adaptive) every round's runs up to
    the round whose decision stops the study."""
    if not seed_rounds.is_adaptive(seed_spec(study)):
        return runs_of(study)
    return [run for k, variants in study_rounds(study) for run in _round_runs(study, k, variants)]


def round_files(study):
    """The decision files of a study's rounds up to the one that stops it (none: fixed seeds);
    a rule whose params walk the rounds lists them as inputs, as Snakemake requires."""
    if not seed_rounds.is_adaptive(seed_spec(study)):
        return []
    return [checkpoints.decide_round.get(study=study, round=k).output.state
            for k, _ in study_rounds(study)]


checkpoint decide_round:
    input:
        metrics=lambda wc: [
            f"{run_dir(run)}/{METRICS}" for run in runs_through(wc.study, int(wc.round))
        ],
        labels=lambda wc: headline_labels(wc.study),
    output:
        state=LAYOUT.round_state("{study}", "{round}"),
    params:
        study=lambda wc: study_settings(wc.study),
        round=lambda wc: int(wc.round),
        code=CODE.decide(),
    wildcard_constraints:
        round=r"\d+",
    message:
        "decide_round study={wildcards.study} round={wildcards.round} (log: {log})"
    log:
        LAYOUT.log("rounds", "{study}/round{round}"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/decide_round.py"


# A decision reads a few JSON files: it runs where Snakemake runs, never as a cluster job.
localrules:
    decide_round,
