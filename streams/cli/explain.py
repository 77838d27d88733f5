"""`sunes explain`: the units behind one figure of an NDJSON file, with their status and reason."""

from __future__ import annotations

import argparse
import sys

from processors.catalogue import RATE_INDICATORS
from processors.formatting import units_to_csv, units_to_json, units_to_table
from processors.units import REASONS, STATUSES
from streams.cli.errors import CliError, Exit
from streams.cli.input_file import add_input_option, read_input
from streams.cli.options import add_rule_options, settings_from_args


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="list the units (stays, reports, correspondents) behind one figure, and why "
        "each is counted or not",
        description="Read a file as `sunes report` does and list every unit of one figure "
        "(FINESS, indicator, period): counted, pending (it may still count until its "
        "deadline) or missed, with one reason from the list in docs/indicators.md. Stays are "
        "given by stay_id (NDA) and patient pseudonym only. Invalid lines are reported on "
        f"stderr (exit status {Exit.INVALID_INPUT}); a figure the file does not have is a "
        f"usage error ({Exit.USAGE}).",
    )
    add_input_option(parser)
    parser.add_argument("--finess", required=True, help="FINESS géographique (9 characters)")
    parser.add_argument("--indicator", required=True, choices=RATE_INDICATORS)
    parser.add_argument("--period", required=True, help='a month "2023-03" or a window "F3"')
    parser.add_argument("--status", choices=STATUSES, help="only the units of this status")
    parser.add_argument("--reason", choices=REASONS, help="only the units of this reason")
    parser.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    add_rule_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    establishments, path, invalid = read_input(args, settings)
    rows = [r for r in establishments.rows(args.finess) if r.indicator == args.indicator]
    row = next((r for r in rows if r.period == args.period), None)
    if row is None:
        periods = ", ".join(r.period for r in rows) or "none"
        raise CliError(
            f"no figure {args.indicator} {args.period} for FINESS {args.finess} in {path} "
            f"(its periods for {args.indicator}: {periods})"
        )
    everything = establishments.units(args.finess, args.indicator, args.period)
    units = [
        u for u in everything if args.status in (None, u.status) and args.reason in (None, u.reason)
    ]
    if args.format == "json":
        print(units_to_json(units))
    elif args.format == "csv":
        sys.stdout.write(units_to_csv(units))
    else:
        registry = establishments.registry.get(args.finess)
        now = establishments.get(args.finess).now
        name = registry.name if registry is not None else ""
        print(units_to_table(units, row, everything, now, name))
    if invalid:
        print(f"{invalid} invalid line(s) skipped; fix them at the producer", file=sys.stderr)
        return Exit.INVALID_INPUT
    return Exit.OK
