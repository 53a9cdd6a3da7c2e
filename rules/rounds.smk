# Adaptive seeds (`seeds: {initial, max, step}`): one checkpoint per (study, round) decides
# which variants run the next round's seeds (cnnablate.decisions.decide). Its small JSON is what the
# input functions below walk, so `snakemake -n` lists exactly the next round's runs and a
# resumed study never redoes a finished seed. A fixed seed list has no rounds.
import json as _json
from pathlib import Path as _Path

from cnnablate.decisions import rounds as seed_rounds  # noqa: E402


def seed_spec(study):
    return study_settings(study)["decisions"]["seeds"]


def study_variants(study):
    return list(dict.fromkeys(run["variant"] for run in runs_of(study)))


def round_state(study, k):
    """The decision after round k (its checkpoint must have run; Snakemake waits for it)."""
    path = checkpoints.decide_round.get(study=study, round=k).output.state
    return _json.loads(_Path(path).read_text())


def runs_through(study, last):
    """The runs of rounds 1..last, as the decisions after rounds 1..last-1 call for them."""
    spec = seed_spec(study)
    active, out = study_variants(study), []
    for k in range(1, last + 1):
        if k > 1:
            active = round_state(study, k - 1)["continuing"]
        out += [RUN_BY_ID[(study, v, s)] for v in active for s in seed_rounds.round_seeds(spec, k)]
    return out


def study_runs(study):
    """Every run a study's tables use: its seed list, or (adaptive) every round's runs up to
    the round whose decision stops the study."""
    spec = seed_spec(study)
    if not seed_rounds.is_adaptive(spec):
        return runs_of(study)
    active, out = study_variants(study), []
    for k in range(1, seed_rounds.n_rounds(spec) + 1):
        out += [RUN_BY_ID[(study, v, s)] for v in active for s in seed_rounds.round_seeds(spec, k)]
        active = round_state(study, k)["continuing"]
        if not active:
            break
    return out


def round_files(study):
    """The decision files of a study's rounds up to the one that stops it (none: fixed seeds);
    a rule whose params walk the rounds lists them as inputs, as Snakemake requires."""
    spec = seed_spec(study)
    if not seed_rounds.is_adaptive(spec):
        return []
    out = []
    for k in range(1, seed_rounds.n_rounds(spec) + 1):
        out.append(checkpoints.decide_round.get(study=study, round=k).output.state)
        if not round_state(study, k)["continuing"]:
            break
    return out


checkpoint decide_round:
    input:
        metrics=lambda wc: [
            f"{run_dir(run)}/metrics.json" for run in runs_through(wc.study, int(wc.round))
        ],
    output:
        state=f"{RESULTS}/studies/{{study}}/rounds/round{{round}}.json",
    params:
        study=lambda wc: study_settings(wc.study),
        round=lambda wc: int(wc.round),
        code=CODE.decide(),
    wildcard_constraints:
        round=r"\d+",
    message:
        "decide_round study={wildcards.study} round={wildcards.round} (log: {log})"
    log:
        f"{LOGS}/rounds/{{study}}/round{{round}}.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/decide_round.py"


# A decision reads a few JSON files: it runs where Snakemake runs, never as a cluster job.
localrules:
    decide_round,
