"""The `sunes` command. Each subcommand lives in its own module; heavy imports stay lazy."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streams import (
    demo_command,
    publish_command,
    report_command,
    simulate_command,
    worker_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sunes",
        description="sunes-stream: live SUN-ES (Ségur) indicators from hospital events.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    report_command.add_parser(subparsers)
    simulate_command.add_parser(subparsers)
    publish_command.add_parser(subparsers)
    worker_command.add_parser(subparsers)
    demo_command.add_parser(subparsers)
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
