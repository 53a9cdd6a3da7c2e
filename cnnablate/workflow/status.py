"""`python -m cnnablate status`: where a study stands, read from files only.

No Snakemake and no TensorFlow: it reads the config, then per run its folder and its log, and
writes nothing, so it is safe while Snakemake runs (locally, or on a cluster's shared file
system) and after a kill. Per run:

- done / diverged: `metrics.json` exists (its `status` says which);
- running: `.resume/heartbeat.json` (written by the job when it starts, when fitting starts and
  after every epoch, `cnnablate.training.monitor`) names a live process: on this host, its pid is
  alive; from
  another host (a cluster node), the heartbeat is younger than STALE_AFTER seconds or three
  measured epochs, whichever is longer. A job in its first second (importing, before its first
  heartbeat) has a log but no heartbeat: it counts as running while its log is younger than
  STALE_AFTER and shows no error;
- failed: the job started (log or `.resume/`) and is not running; the detail is the error
  line of its log's last traceback, or "stopped" (killed: a rerun resumes after the last
  finished epoch);
- waiting: nothing of it exists yet.

The ETA is the remaining epochs times the measured seconds per epoch of the study's finished
and running runs, divided by the number of runs running now (at least one).
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cnnablate.base import rounds
from cnnablate.base.layout import HISTORY, METRICS, Layout, heartbeat_file, resume_dir
from cnnablate.workflow.config import apply_selection

STALE_AFTER = 900.0
BAR_WIDTH = 20
DATA_LINE = "] data: "  # the training job's first log line of an attempt (cnnablate.training.train)
TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class RunStatus:
    study: str
    variant: str
    seed: int
    state: str  # done | running | failed | diverged | waiting
    epochs: int
    epochs_done: int
    val_accuracy: float | None  # best for finished runs, last for running/failed ones
    seconds_per_epoch: float | None
    detail: str = ""
    tuning: str = ""  # a tuning run's candidate (`tune:`); "" for a deciding run


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent, or caught mid-write by a reader on another host


def _float(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _partial_history(work: Path) -> list[dict]:
    try:
        with open(work / HISTORY, newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError:
        return []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _last_error(log: Path) -> str | None:
    """The error line of the log's last attempt, if that attempt ended in a traceback."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    tb = text.rfind(TRACEBACK)
    if tb < 0 or tb < text.rfind(DATA_LINE):
        return None
    lines = [line.strip() for line in text[tb:].splitlines() if line.strip()]
    errors = [line for line in lines[1:] if not line.startswith(("File ", "^", "~"))]
    return errors[-1] if errors else "error"


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _alive(beat: dict | None, beat_mtime: float | None, now: float, stale: float) -> bool:
    if not beat or beat_mtime is None:
        return False
    if beat.get("host") == socket.gethostname():
        return _pid_alive(int(beat.get("pid", -1)))
    return now - beat_mtime < stale


def run_status(run: dict, run_dir: Path, log: Path, now: float | None = None) -> RunStatus:
    """The state of one run, from its folder and its log."""
    now = time.time() if now is None else now
    epochs = int(run["train"]["epochs"])
    ident = (run["study"], run["variant"], int(run["seed"]))
    metrics = _read_json(run_dir / METRICS)
    if metrics is not None:
        diverged = metrics.get("status") == "diverged"
        return RunStatus(
            *ident, "diverged" if diverged else "done", epochs,
            int(metrics.get("epochs_completed") or 0),
            _float(metrics.get("best_val_accuracy")), _float(metrics.get("seconds_per_epoch")),
            f"at epoch {metrics.get('diverged_epoch')}; log: {log}" if diverged else "",
        )
    work = resume_dir(run_dir)
    rows = _partial_history(work)
    seconds = [s for s in (_float(r.get("seconds")) for r in rows) if s is not None]
    per_epoch = sum(seconds) / len(seconds) if seconds else None
    last_acc = _float(rows[-1].get("val_accuracy")) if rows else None
    done = len(rows)
    beat_path = heartbeat_file(run_dir)
    beat, beat_mtime, log_mtime = _read_json(beat_path), _mtime(beat_path), _mtime(log)
    stale = max(STALE_AFTER, 3 * (per_epoch or 0.0))
    status = lambda state, detail="": RunStatus(  # noqa: E731
        *ident, state, epochs, done, last_acc, per_epoch, detail
    )
    if _alive(beat, beat_mtime, now, stale):
        return status("running", "" if rows else "starting")
    error = _last_error(log) if log_mtime is not None else None
    newer_log = log_mtime is not None and (beat_mtime is None or log_mtime > beat_mtime)
    if newer_log and error is None and now - log_mtime < stale:
        return status("running", "starting")
    if log_mtime is None and not work.exists():
        return status("waiting")
    how = error or "stopped (killed? a rerun resumes after the last finished epoch)"
    return status("failed", f"{how}; log: {log}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _name(s: RunStatus) -> str:
    return Layout().run_name(s.variant, s.seed, s.tuning or None)


def _line(s: RunStatus, width: int = 24) -> str:
    name = _name(s)
    speed = f", {s.seconds_per_epoch:.2f} s/epoch" if s.seconds_per_epoch is not None else ""
    acc = f"{s.val_accuracy:.4f}" if s.val_accuracy is not None else "-"
    if s.state == "done":
        text = f"{s.epochs_done} epochs, best val_accuracy {acc}{speed}"
        if s.detail:  # a halving candidate that a rung did not promote
            text = f"{text}; {s.detail}"
    elif s.state == "diverged":
        text = s.detail
    elif s.state == "running":
        text = f"epoch {s.epochs_done} of {s.epochs}, val_accuracy {acc}{speed}"
        if s.detail:
            text = f"{s.detail}, {text}"
    elif s.state == "failed":
        text = f"after epoch {s.epochs_done} of {s.epochs}: {s.detail}"
    else:
        text = f"{s.epochs} epoch{'s' if s.epochs != 1 else ''}"
    return f"  {name:<{width}} {s.state:<9} {text}"


def study_seconds_per_epoch(runs: list[RunStatus]) -> float | None:
    """Mean measured seconds per epoch over the study's finished and running runs."""
    values = [r.seconds_per_epoch for r in runs
              if r.state in ("done", "diverged", "running") and r.seconds_per_epoch]
    return sum(values) / len(values) if values else None


def remaining_epochs(r: RunStatus) -> int:
    return 0 if r.state in ("done", "diverged") else r.epochs - r.epochs_done


def format_status(statuses: list[RunStatus], notes: dict[str, str] | None = None) -> str:
    """One header per study (progress bar, counts, ETA) and one line per run; a total.
    `notes`: a line per study shown under its tuning runs (halving's rungs, `rung_notes`)."""
    running_now = max(1, sum(s.state == "running" for s in statuses))
    # names of tuning runs are longer: keep the columns aligned
    width = max([24, *(len(_name(s)) for s in statuses)])
    out: list[str] = []
    total_work: float | None = 0.0
    for study in dict.fromkeys(s.study for s in statuses):
        runs = [s for s in statuses if s.study == study]
        total = sum(r.epochs for r in runs)
        left = sum(remaining_epochs(r) for r in runs)
        frac = (total - left) / total if total else 1.0
        filled = int(frac * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        tuning = [r for r in runs if r.tuning]
        counts = _counts(runs)
        if tuning:  # a tuned study: its tuning and deciding runs apart
            deciding = [r for r in runs if not r.tuning]
            counts = (f"tuning {len(tuning)} runs: {_counts(tuning)}; "
                      f"deciding {len(deciding)} runs: {_counts(deciding) or 'none yet'}")
        per_epoch = study_seconds_per_epoch(runs)
        if left == 0:
            eta = "finished"
        elif per_epoch is None:
            eta, total_work = "ETA unknown (nothing measured yet)", None
        else:
            work = left * per_epoch
            total_work = None if total_work is None else total_work + work
            eta = f"ETA {_duration(work / running_now)}"
        out.append(f"{study} [{bar}] {frac:4.0%}  {counts}; {left} epochs left, {eta}")
        if tuning:
            out.append(f" tuning runs ({sum(r.epochs for r in tuning)} epochs):")
            out.extend(_line(r, width) for r in tuning)
            if (notes or {}).get(study):
                out.append(notes[study])
            out.append(" deciding runs (at each variant's selected candidate):")
        out.extend(_line(r, width) for r in runs if not r.tuning)
    if statuses:
        finished = sum(r.state in ("done", "diverged") for r in statuses)
        eta = "unknown" if total_work is None else _duration(total_work / running_now)
        out.append(f"total: {finished} of {len(statuses)} runs finished, "
                   f"{running_now if any(s.state == 'running' for s in statuses) else 0} "
                   f"running; ETA {eta}")
    else:
        out.append("no runs in this config")
    return "\n".join(out)


def _counts(runs: list[RunStatus]) -> str:
    return ", ".join(
        f"{n} {state}" for state in ("done", "diverged", "running", "failed", "waiting")
        if (n := sum(r.state == state for r in runs))
    )


def with_tuning(runs: list[dict], tuning_runs: list[dict]) -> list[dict]:
    """Each study's tuning runs (they train first), then its deciding runs, in study order."""
    studies = dict.fromkeys(r["study"] for r in [*tuning_runs, *runs])
    return [r for study in studies for group in (tuning_runs, runs) for r in group
            if r["study"] == study]


def at_selection(runs: list[dict], root: Path, smoke: bool = False,
                 smoke_settings: dict | None = None) -> list[dict]:
    """Deciding runs of tuned variants at their selected candidate once the study's selection
    is written (results/studies/{study}/tuning/selection.json): a tuned `train.epochs` then
    counts as selected. Runs of studies without a selection stay as resolved."""
    layout = Layout(smoke=smoke)
    selections: dict[str, dict] = {}
    out = []
    for run in runs:
        study = run["study"]
        if study not in selections:
            state = _read_json(root / layout.tuning_selection(study))
            selections[study] = (state or {}).get("variants") or {}
        chosen = selections[study].get(run["variant"])
        out.append(apply_selection(run, chosen["values"], smoke_settings) if chosen else run)
    return out


def scheduled(runs: list[dict], seeds_of: dict, root: Path, smoke: bool = False) -> list[dict]:
    """`runs` less those adaptive seeds will not run: a seed of round k+1 or later of a variant
    that a written round-k decision (results/studies/{study}/rounds/round{k}.json) did not
    continue. Runs of rounds not yet decided stay (they may still run). `seeds_of`: study name
    -> its `seeds:` setting. The rounds are walked as the workflow walks them
    (cnnablate.base.rounds.walk)."""
    layout = Layout(smoke=smoke)
    planned: dict[str, set[tuple[str, int]]] = {}
    for study in dict.fromkeys(run["study"] for run in runs):
        spec = seeds_of.get(study)
        if not rounds.is_adaptive(spec):
            continue
        variants = list(dict.fromkeys(r["variant"] for r in runs if r["study"] == study))
        decision = lambda k, study=study: _continuing(root / layout.round_state(study, k))  # noqa: E731
        planned[study] = {(v, s) for k, active in rounds.walk(spec, variants, decision)
                          for v in active for s in rounds.round_seeds(spec, k)}
    return [run for run in runs if run["study"] not in planned
            or (run["variant"], int(run["seed"])) in planned[run["study"]]]


def _continuing(path: Path) -> list[str] | None:
    """A written round decision's continuing variants; None while it is not written."""
    state = _read_json(path)
    return None if state is None else list(state.get("continuing", []))


def collect(runs: list[dict], root: Path, smoke: bool = False,
            now: float | None = None) -> list[RunStatus]:
    """Every run's status, with the folders the workflow uses (cnnablate.base.layout)."""
    layout = Layout(smoke=smoke)
    out = []
    for run in runs:
        ident = layout.of(run)  # a tuning run's: {variant}/tune-{candidate}/seed{seed}
        run_dir, log = root / layout.run_dir(*ident), root / layout.run_log(*ident)
        status = _status_at(run, run_dir, log, root, now)
        if ident[3] and status.state in ("waiting", "failed"):
            status = _at_rung(run, run_dir, root / layout.study_dir(run["study"]), status)
        out.append(replace(status, tuning=ident[3] or ""))
    return out


# --- halving's rungs (`tune: {schedule: halving}`, cnnablate.decisions.stages) ----------------
def _rung_decisions(study_dir: Path) -> list[dict]:
    """The study's written rung decisions (tuning/rung{r}.json), in rung order."""
    found = [_read_json(p) for p in sorted((study_dir / "tuning").glob("rung*.json"))]
    return sorted((d for d in found if d), key=lambda d: int(d.get("rung", 0)))


def _at_rung(run: dict, run_dir: Path, study_dir: Path, status: RunStatus) -> RunStatus:
    """A halving candidate between rungs: stopped (a rung decision did not promote it: done,
    at that rung's epochs) or promoted and waiting for its next rung (not failed: its resume
    state is kept on purpose). Others as `status` says."""
    snapshots = sorted((int(p.parent.name.removeprefix("rung-")), p)
                       for p in run_dir.glob(f"rung-*/{METRICS}")
                       if p.parent.name.removeprefix("rung-").isdigit())
    if not snapshots:
        return status
    epochs, path = snapshots[-1]
    metrics = _read_json(path) or {}
    candidate = run["tuning"]["candidate"]
    for decision in _rung_decisions(study_dir):
        entry = (decision.get("variants") or {}).get(run["variant"]) or {}
        if entry.get("epochs") != epochs or candidate not in entry.get("trained", []):
            continue
        if candidate in entry.get("promoted", []):
            break
        return replace(
            status, state="done", epochs=epochs, epochs_done=epochs,
            val_accuracy=_float(metrics.get("best_val_accuracy")),
            seconds_per_epoch=_float(metrics.get("seconds_per_epoch")),
            detail=f"stopped at rung {decision['rung']}: not promoted")
    if status.state == "failed" and "stopped" in status.detail:
        return replace(status, state="waiting", epochs_done=epochs,
                       val_accuracy=_float(metrics.get("best_val_accuracy")),
                       detail=f"rung of {epochs} epochs done, continues")
    return status


def rung_notes(statuses: list[RunStatus], root: Path, smoke: bool = False) -> dict[str, str]:
    """Per halving study, one line on its rungs: how many candidates each trained and kept."""
    layout = Layout(smoke=smoke)
    notes = {}
    for study in dict.fromkeys(s.study for s in statuses if s.tuning):
        decisions = _rung_decisions(root / layout.study_dir(study))
        if not decisions:
            continue
        parts = []
        for d in decisions:
            entries = list((d.get("variants") or {}).values())
            trained = sum(len(e.get("trained", [])) for e in entries)
            kept = sum(len(e.get("promoted", [])) for e in entries)
            epochs = sorted({e.get("epochs") for e in entries})
            parts.append(f"rung {d['rung']} ({'/'.join(map(str, epochs))} epochs) "
                         f"{kept} of {trained} candidates promoted")
        notes[study] = " rungs: " + "; ".join(parts)
    return notes


def zoom_runs(tuning: list[dict], root: Path, smoke: bool = False,
              smoke_settings: dict | None = None) -> list[dict]:
    """The zoom stage's tuning runs of studies whose zoom checkpoint has written its new
    candidates (results/studies/{study}/tuning/zoom.json); none before."""
    from cnnablate.workflow.config import tuning_run_at

    layout = Layout(smoke=smoke)
    out = []
    for study in dict.fromkeys(r["study"] for r in tuning):
        state = _read_json(root / layout.study_file(study, "tuning/zoom.json")) or {}
        for variant, entry in (state.get("variants") or {}).items():
            mine = [r for r in tuning if (r["study"], r["variant"]) == (study, variant)]
            if not mine:
                continue
            seeds = list(dict.fromkeys(int(r["seed"]) for r in mine))
            for candidate in entry.get("candidates", []):
                run = tuning_run_at(mine[0], candidate["values"], smoke_settings)
                out.extend({**run, "seed": seed} for seed in seeds)
    return out


def _status_at(run: dict, run_dir: Path, log: Path, root: Path, now: float | None) -> RunStatus:
    status = run_status(run, run_dir, log, now)
    # Show the log path as the user would type it from the project folder.
    shown = os.path.relpath(log, root)
    return RunStatus(**{**status.__dict__, "detail": status.detail.replace(str(log), shown)})
