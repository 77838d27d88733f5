"""`sunes report`: the batch reference computation over an NDJSON file."""

from __future__ import annotations

import argparse
import sys

from processors.formatting import to_csv, to_json, to_table
from streams.cli.errors import Exit
from streams.cli.input_file import add_input_option, read_input
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
    add_input_option(parser)
    parser.add_argument("--format", "-f", choices=("json", "table", "csv"), default="json")
    add_rule_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    establishments, _, invalid = read_input(args, settings_from_args(args))
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
