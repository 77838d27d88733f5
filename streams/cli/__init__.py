"""The `sunes` command: one module per subcommand in this package; heavy imports stay lazy.

report    the batch reference calculator (processors/)
explain   the units behind one figure of a file, with their status and reason
simulate  synthetic hospital traffic, to a file or to Kafka
publish   validate a file and publish it
worker    a stream worker (streams/worker/)
demo      broker, worker and simulator on one machine
hl7       HL7 v2 in: convert message files to events, or listen over MLLP
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

# Only the leaf module here: the layers below the CLI (streams.kafka_clients, the worker's
# configuration) raise its errors, and the commands import them.
from streams.cli.errors import CliError, Exit

if TYPE_CHECKING:
    import argparse


def build_parser() -> argparse.ArgumentParser:
    from streams.cli import access, demo, explain, hl7, publish, report, simulate, worker
    from streams.cli.options import Parser

    parser = Parser(
        prog="sunes",
        description="sunes-stream: live SUN-ES (Ségur) indicators from hospital events.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (report, explain, simulate, publish, worker, demo, hl7, access):
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every CliError becomes `error: <message>` and its exit code here."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse: --help, or a usage error it has printed
        return stop.code if isinstance(stop.code, int) else Exit.USAGE
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return Exit.USAGE
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit)
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
