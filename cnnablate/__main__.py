"""The `cnnablate` command (also `python -m cnnablate`):

    cnnablate status [--configfile FILE] [--config smoke=true] [--directory DIR]
    cnnablate export mlflow [--tracking-uri URI] [--create] [--copy-models] [--configfile FILE]
                            [--config ...] [-d DIR]
"""

from __future__ import annotations

import argparse
import copy
import sys
import traceback
from pathlib import Path

import yaml

from cnnablate.base.layout import METRICS, MLFLOW_DB, MODEL, Layout
from cnnablate.workflow import config as cnnablate_config

REAL = Layout()  # the folders of real (not smoke) runs, as the help names them


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    """The options that say which config's studies, and where their files are."""
    parser.add_argument("--configfile", default=None,
                        help="the config (default: config.yaml in --directory), as for Snakemake")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="top-level overrides, as for Snakemake (e.g. smoke=true)")
    parser.add_argument("--directory", "-d", default=".",
                        help=f"the workflow folder holding {REAL.results}/ and {REAL.logs}/ "
                             "(default: .)")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cnnablate", description="cnnablate's command line (the workflow itself runs "
        "with snakemake; see README.md)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser(
        "status", help="progress of the config's studies: one line per run, ETA (reads files only)"
    )
    _add_config_args(status)
    export = commands.add_parser(
        "export", help="finished runs into a tracking tool: `cnnablate export mlflow`")
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")
    mlflow = targets.add_parser(
        "mlflow", help="one MLflow experiment per study, one run per (variant, seed); "
        "exporting again updates, never duplicates (needs requirements-mlflow.txt)")
    mlflow.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="any URI MLflow takes (default: "
                             f"sqlite:///{REAL.results}/{MLFLOW_DB}, in --directory)")
    mlflow.add_argument("--create", action="store_true",
                        help="start a new local store (a SQLite file, its folder) if there is "
                             "none at --tracking-uri; without it a path that does not exist is "
                             "refused, so that a typo cannot start a second store (the default "
                             "store is always made)")
    mlflow.add_argument("--copy-models", action="store_true",
                        help=f"also copy each run's {MODEL} into the store's artifacts "
                             "(default: a tag with its path)")
    _add_config_args(mlflow)
    return parser.parse_args(argv)


def _planned_runs(args: argparse.Namespace, command: str) -> tuple[list[dict], bool] | None:
    """The config's runs as the workflow schedules them, and whether in smoke mode; None after
    printing a one-line error."""
    from cnnablate.workflow import status

    root = Path(args.directory)
    path = Path(args.configfile) if args.configfile else root / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text()) or {}
        for item in args.config:
            key, sep, value = item.partition("=")
            if not sep:
                raise cnnablate_config.ConfigError(f"--config {item}: expected KEY=VALUE")
            config[key] = yaml.safe_load(value)
        runs = cnnablate_config.resolve_runs(config)
        tuning = cnnablate_config.resolve_tuning(config).runs
        smoke_settings = cnnablate_config.validate(copy.deepcopy(config))["smoke_settings"]
        smoke = any(run.get("smoke") for run in runs)
        # the zoom stage's candidates, once its checkpoint has named them
        tuning = tuning + status.zoom_runs(tuning, root, smoke, smoke_settings)
    except (OSError, yaml.YAMLError, cnnablate_config.ConfigError) as error:
        print(f"cnnablate {command}: {path}: {error}", file=sys.stderr)
        return None
    smoke = any(run.get("smoke") for run in runs)
    seeds_of = {name: study.get("seeds") for name, study in config["studies"].items()}
    runs = status.scheduled(runs, seeds_of, root, smoke=smoke)
    return status.with_tuning(status.at_selection(runs, root, smoke, smoke_settings), tuning), smoke


def _status(args: argparse.Namespace) -> int:
    from cnnablate.workflow import status

    planned = _planned_runs(args, "status")
    if planned is None:
        return 2
    runs, smoke = planned
    statuses = status.collect(runs, Path(args.directory), smoke=smoke)
    print(status.format_status(statuses, status.rung_notes(statuses, Path(args.directory), smoke)))
    return 0


def _export_mlflow(args: argparse.Namespace) -> int:
    from cnnablate.reporting import mlflow_export

    planned = _planned_runs(args, "export mlflow")
    if planned is None:
        return 2
    runs, smoke = planned

    # The workflow's results and run folders (smoke mode's apart).
    root, layout = Path(args.directory), Layout(smoke=smoke)
    uri = args.tracking_uri or mlflow_export.default_tracking_uri(root / layout.results)
    # Only finished runs (metrics.json) go out.
    folders = [root / layout.run_dir(*layout.of(r)) for r in runs]
    finished = [f for f in folders if (f / METRICS).is_file()]
    try:
        outcomes = mlflow_export.export_runs(
            finished, uri, experiment_suffix=" (smoke)" if smoke else "",
            copy_models=args.copy_models,
            create=args.create or args.tracking_uri is None)  # the default store: made
    except mlflow_export.ExportError as error:
        # One line on the console; what caused it, traceback and all, in the log.
        log = root / layout.export_log
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
            details = f" (details: {log})"
        except OSError:
            details = ""
        print(f"cnnablate export mlflow: {error}{details}", file=sys.stderr)
        return 2
    print(mlflow_export.summary_line(outcomes, uri))
    if len(finished) < len(folders):
        print(f"({len(folders) - len(finished)} planned runs are not finished yet and were "
              "left out; export again when they are)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.command == "export":
        return _export_mlflow(args)  # the only target so far
    return _status(args)


if __name__ == "__main__":
    sys.exit(main())
