"""`sunes report` on NDJSON files: formats, settings, invalid lines and exit status."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.cli import main
from tests.builders import F1, deposited, discharged, establishment

EVENTS: list[dict[str, Any]] = [
    discharged("S1"),
    deposited("D1", "11490-0", stay_id="S1"),
    discharged("S2", patient="P2"),
    establishment(window="F2"),  # the registry may come last: order does not matter
]


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return write(tmp_path / "events.ndjson", [orjson.dumps(e) for e in EVENTS])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_rows_have_the_documented_keys(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "report", "--input", str(sample))
    assert (code, err) == (0, "")
    rows = orjson.loads(out)
    ds11 = [r for r in rows if r["indicator"] == "DS1.1"]
    assert ds11 == [
        {"finess": F1, "indicator": "DS1.1", "period": "2023-01", "numerator": 1,
         "denominator": 2, "ratio": 0.5, "target": 0.55},
        {"finess": F1, "indicator": "DS1.1", "period": "F2", "numerator": 1,
         "denominator": 2, "ratio": 0.5, "target": 0.55},
    ]  # fmt: skip


def test_grace_days_flag_changes_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    late = deposited("D1", "11490-0", stay_id="S1", deposited_at="2023-01-20T10:00:00+01:00")
    path = write(
        tmp_path / "e.ndjson",
        [orjson.dumps(establishment()), orjson.dumps(discharged("S1")), orjson.dumps(late)],
    )
    _, out, _ = run(capsys, "report", "-i", str(path), "--grace-days", "0")
    assert orjson.loads(out)[0]["numerator"] == 0
    _, out, _ = run(capsys, "report", "-i", str(path), "--grace-days", "10")
    assert orjson.loads(out)[0]["numerator"] == 1


def test_csv_format(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "report", "--input", str(sample), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0] == {"finess": F1, "indicator": "DS1.1", "period": "2023-01", "numerator": "1",
                       "denominator": "2", "ratio": "0.5000", "target": "0.55"}  # fmt: skip


def test_table_format_marks_rates_under_target(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "report", "--input", str(sample), "--format", "table")
    line = next(li for li in out.splitlines() if "DS 1.1" in li and " F2 " in li)
    assert "Centre hospitalier 1" in line
    assert "Lettre de liaison" in line
    assert "50.0 %" in line and "55.0 %" in line and line.endswith("▼")
    ds42 = next(li for li in out.splitlines() if "DS 4.2" in li and " F2 " in li)
    assert not ds42.endswith("▼") or "0.0 %" in ds42


def test_invalid_lines_are_reported_and_do_not_stop_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [orjson.dumps(e) for e in EVENTS]
    lines.insert(1, b'{"type": "stay.discharged"')
    lines.append(orjson.dumps({**discharged("S9"), "finess": "123"}))
    code, out, err = run(capsys, "report", "--input", str(write(tmp_path / "bad.ndjson", lines)))
    assert code == 1
    assert ":2: invalid (invalid_json): not valid JSON" in err
    assert ":6: invalid (invalid_finess): field 'finess'" in err
    assert "2 invalid line(s) skipped" in err
    assert any(r["indicator"] == "DS1.1" and r["denominator"] == 2 for r in orjson.loads(out))


def test_missing_input_file_says_how_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "report", "--input", str(tmp_path / "nope.ndjson"))
    assert code == 2
    assert "does not exist" in err and "--input" in err


def test_bad_setting_is_a_clear_error(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scope = "hospitalisation_complete,ambulatoire"
    code, _, err = run(capsys, "report", "--input", str(sample), "--stay-scope", scope)
    assert code == 2
    assert err.startswith("error: unknown stay kind(s) in stay_scope: ambulatoire")


def test_console_command_runs(sample: Path) -> None:
    done = subprocess.run(
        [Path(sys.executable).with_name("sunes"), "report", "--input", str(sample), "-f", "table"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "DS 1.1" in done.stdout
