"""The `sunes` command: one module per subcommand in this package; heavy imports stay lazy.

report    the batch reference calculator (processors/)
simulate  synthetic hospital traffic, to a file or to Kafka
publish   validate a file and publish it
worker    a stream worker (streams/worker/)
demo      broker, worker and simulator on one machine
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams.cli import demo, publish, report, simulate, worker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sunes",
        description="sunes-stream: live SUN-ES (Ségur) indicators from hospital events.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (report, simulate, publish, worker, demo):
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return 2
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
