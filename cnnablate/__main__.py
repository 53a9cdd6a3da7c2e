"""`python -m cnnablate status [--configfile FILE] [--config smoke=true] [--directory DIR]`."""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

from cnnablate.workflow import config as cnnablate_config


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cnnablate")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser(
        "status", help="progress of the config's studies: one line per run, ETA (reads files only)"
    )
    status.add_argument("--configfile", default=None,
                        help="the config (default: config.yaml in --directory), as for Snakemake")
    status.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="top-level overrides, as for Snakemake (e.g. smoke=true)")
    status.add_argument("--directory", "-d", default=".",
                        help="the workflow folder holding results/ and logs/ (default: .)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
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
    except (OSError, yaml.YAMLError, cnnablate_config.ConfigError) as error:
        print(f"cnnablate status: {path}: {error}", file=sys.stderr)
        return 2
    smoke = any(run.get("smoke") for run in runs)
    seeds_of = {name: study.get("seeds") for name, study in config["studies"].items()}
    runs = status.scheduled(runs, seeds_of, root, smoke=smoke)
    runs = status.with_tuning(status.at_selection(runs, root, smoke, smoke_settings), tuning)
    print(status.format_status(status.collect(runs, root, smoke=smoke)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
