"""The --input NDJSON file of `sunes report` and `sunes explain`: read as the batch reads it,
each invalid line reported on stderr with its number and reason."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from processors.collection import Establishments
from processors.report import read_establishments
from processors.settings import Settings
from streams.cli.errors import CliError


def add_input_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", "-i", required=True, type=Path, help="NDJSON file, or - for stdin"
    )


def read_input(args: argparse.Namespace, settings: Settings) -> tuple[Establishments, Path, int]:
    """The establishments of the file's valid lines, the file, and how many were invalid."""
    path: Path = args.input
    if str(path) == "-":
        path = Path("/dev/stdin")
    elif not path.is_file():
        raise CliError(f"input file {path} does not exist (give an NDJSON file with --input)")
    establishments, invalid = read_establishments(path, settings)
    for line in invalid:
        print(f"{path}:{line.line_number}: invalid ({line.code}): {line.reason}", file=sys.stderr)
    return establishments, path, len(invalid)
