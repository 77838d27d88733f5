"""`sunes explain` on NDJSON files: the units of one figure, filters, formats, errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from processors.report import read_establishments
from processors.settings import Settings
from streams.cli import main
from tests.builders import (
    F1,
    cda_attachment,
    deposit_failed,
    deposited,
    discharged,
    establishment,
    mss_sent,
    produced,
)

ADDRESS = "dr.r1@hopital.mssante.fr"
EVENTS: list[dict[str, Any]] = [
    establishment(window="F2"),
    discharged("S1", correspondents=[{"rpps": "R1", "mss_address": ADDRESS}]),
    deposited("D1", "11490-0", stay_id="S1"),
    discharged("S2", patient="P2"),
    produced("D2", "11490-0", stay_id="S2", patient="P2"),
    deposit_failed("D2"),
    discharged("S3", patient="P3"),
    deposited("D3", "11490-0", stay_id="S3", patient="P3",
              deposited_at="2023-03-01T10:00:00+01:00"),
    mss_sent("pro", "R1", sent="2023-01-20T10:00:00+01:00", attachments=[cda_attachment(None)]),
]  # fmt: skip


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in EVENTS) + b"\n")
    return path


def explain(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["explain", "--input", str(path), "--finess", F1, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_units_are_the_collection_units(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = explain(capsys, sample, "--indicator", "DS1.1", "--period", "2023-01",
                             "--format", "json")  # fmt: skip
    assert (code, err) == (0, "")
    units = orjson.loads(out)
    establishments, invalid = read_establishments(sample, Settings())
    assert invalid == []
    assert units == [u.as_json() for u in establishments.units(F1, "DS1.1", "2023-01")]
    # S3's letter came late: the establishment's now (03-01) is past every deadline.
    assert [(u["unit_id"], u["status"], u["reason"], u["detail"]) for u in units] == [
        ("S2", "missed", "deposit_failed", "DMPClosed"),
        ("S3", "missed", "deposited_late", "18 days late"),
        ("S1", "counted", None, None),
    ]
    assert units[0]["deadline"] == "2023-02-11" and units[0]["event_day"] == "2023-01-12"


def test_status_and_reason_filter_the_rows(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--indicator", "DS1.1", "--period", "F2", "--format", "csv")
    code, out, _ = explain(capsys, sample, *args, "--status", "missed")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["unit_id"] for r in rows} == {"S2", "S3"}
    assert {r["period"] for r in rows} == {"F2"}
    _, out, _ = explain(capsys, sample, *args, "--reason", "deposited_late")
    assert [r["unit_id"] for r in csv.DictReader(io.StringIO(out))] == ["S3"]
    _, out, _ = explain(capsys, sample, *args, "--status", "counted", "--reason", "deleted")
    assert list(csv.DictReader(io.StringIO(out))) == []


def test_the_table_is_in_french_with_the_dates_to_act(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = explain(capsys, sample, "--indicator", "DS1.1", "--period", "2023-01")
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0]
        == f"DS 1.1 Lettre de liaison à la sortie — {F1} Centre hospitalier 1 — période 2023-01"
    )
    assert "taux 33.3 % (1/3), cible 55.0 %" in lines[1]
    assert "1 compté, 0 en attente, 2 manqués — au 01/03/2023" in lines[1]
    s2 = next(line for line in lines if line.startswith("S2 "))
    assert s2.split() == ["S2", "P2", "12/01/2023", "11/02/2023", "–", "manqué", "dépôt",
                          "refusé", "par", "le", "DMP", "DMPClosed"]  # fmt: skip
    assert "18 jours de retard" in out


def test_a_correspondent_is_given_by_rpps_never_by_address(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for fmt in ("table", "json", "csv"):
        code, out, _ = explain(capsys, sample, "--indicator", "DS4.1", "--period", "2023-01",
                               "--format", fmt)  # fmt: skip
        assert code == 0 and "R1" in out and ADDRESS not in out
    _, out, _ = explain(capsys, sample, "--indicator", "DS4.1", "--period", "2023-01",
                        "--format", "json")  # fmt: skip
    (unit,) = orjson.loads(out)
    assert (unit["kind"], unit["patient_id"], unit["reason"]) == (
        "correspondent",
        None,
        "no_qualifying_attachment",
    )


def test_a_figure_the_file_does_not_have_is_a_usage_error(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = explain(capsys, sample, "--indicator", "DS1.1", "--period", "2023-02")
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"error: no figure DS1.1 2023-02 for FINESS {F1} in {sample} "
        "(its periods for DS1.1: 2023-01, F2)"
    )
    code, _, err = explain(capsys, sample, "--indicator", "DS1.1", "--period", "2023-01",
                           "--reason", "bogus")  # fmt: skip
    assert code == 2 and "invalid choice: 'bogus'" in err


def test_invalid_lines_are_reported_and_the_units_still_listed(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample.write_bytes(sample.read_bytes() + b'{"type": "stay.discharged"}\n')
    code, out, err = explain(capsys, sample, "--indicator", "DS1.1", "--period", "2023-01",
                             "--format", "json")  # fmt: skip
    assert code == 1
    assert len(orjson.loads(out)) == 3
    assert f"{sample}:{len(EVENTS) + 1}: invalid" in err


def test_counting_flags_are_those_of_report(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = explain(capsys, sample, "--indicator", "DS1.1", "--period", "2023-01",
                        "--format", "json", "--grace-days", "60")  # fmt: skip
    assert {u["unit_id"]: u["status"] for u in orjson.loads(out)} == {
        "S1": "counted",
        "S3": "counted",
        "S2": "pending",
    }
