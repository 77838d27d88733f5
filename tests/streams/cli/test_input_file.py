"""The --input file of report and explain: a missing file says how to fix it; invalid lines
are reported with their number and counted, valid ones applied."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from processors.settings import Settings
from streams.cli.errors import CliError
from streams.cli.input_file import read_input
from tests import builders


def test_a_missing_file_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="give an NDJSON file with --input"):
        read_input(argparse.Namespace(input=tmp_path / "nope.ndjson"), Settings())


def test_invalid_lines_are_reported_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "feed.ndjson"
    lines = [
        orjson.dumps(builders.establishment()),
        b"{not json",
        orjson.dumps(builders.discharged("S1")),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    establishments, read, invalid = read_input(argparse.Namespace(input=path), Settings())
    assert (read, invalid) == (path, 1)
    assert f"{path}:2: invalid (invalid_json)" in capsys.readouterr().err
    assert {r.indicator for r in establishments.rows(builders.F1)} >= {"DS1.1"}
