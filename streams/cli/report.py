"""`sunes report`: the batch reference computation over an NDJSON file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from processors.collection import Establishments
from processors.formatting import to_csv, to_json, to_table
from processors.report import InvalidLine, read_ndjson
from streams.cli.errors import CliError, Exit
from streams.cli.options import add_rule_options, settings_from_args


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="compute the indicators from an NDJSON file (the reference calculator)",
        description="Read establishment records and events of all topics, in any order, and "
        "print one row per (finess, indicator, period) with a denominator above 0. Invalid "
        f"lines are reported on stderr; the exit status is {Exit.INVALID_INPUT} when there were "
        f"any, {Exit.USAGE} on a usage error.",
    )
    parser.add_argument(
        "--input", "-i", required=True, type=Path, help="NDJSON file, or - for stdin"
    )
    parser.add_argument("--format", "-f", choices=("json", "table", "csv"), default="json")
    add_rule_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    path: Path = args.input
    if str(path) == "-":
        path = Path("/dev/stdin")
    elif not path.is_file():
        raise CliError(f"input file {path} does not exist (give an NDJSON file with --input)")
    establishments = Establishments(settings)
    invalid = 0
    for _, item in read_ndjson(path, settings):
        if isinstance(item, InvalidLine):
            invalid += 1
            print(
                f"{path}:{item.line_number}: invalid ({item.code}): {item.reason}", file=sys.stderr
            )
        else:
            establishments.apply(item)
    rows = establishments.rows()
    if args.format == "json":
        print(to_json(rows))
    elif args.format == "csv":
        sys.stdout.write(to_csv(rows))
    else:
        names = {finess: record.name for finess, record in establishments.registry.items()}
        print(to_table(rows, names))
    if invalid:
        print(f"{invalid} invalid line(s) skipped; fix them at the producer", file=sys.stderr)
        return Exit.INVALID_INPUT
    return Exit.OK
