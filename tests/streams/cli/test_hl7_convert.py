"""`sunes hl7 convert`: NDJSON events, refusals on stderr, exit status; `sunes report` over
its output gives the scenario's figures computed by hand (tests/fixtures/hl7/README.md)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.cli import main
from tests.builders import establishment

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"
SCENARIO = sorted((FIXTURES / "scenario").glob("*.hl7"))
MALFORMED = sorted((FIXTURES / "malformed").glob("*.hl7"))
FINESS = "750000010"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_scenario_to_a_file_then_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.ndjson"
    code, out, err = run(capsys, "hl7", "convert", *map(str, SCENARIO), "--output", str(events))
    assert (code, out) == (0, "")
    assert "16 message(s), 18 event(s): 14 converted, 2 ignored adt_state_only" in err
    registry = establishment(FINESS, window="F4", has_lab=True, has_imaging=True)
    with events.open("ab") as file:
        file.write(orjson.dumps(registry) + b"\n")
    code, out, _ = run(capsys, "report", "--input", str(events), "--format", "json")
    assert code == 0
    figures = {
        row["indicator"]: (row["numerator"], row["denominator"])
        for row in orjson.loads(out)
        if row["period"] == "2026-01"
    }
    assert figures == {
        "DS1.1": (1, 1),  # stay 2 cancelled (A13); the letter's replacement qualifies
        "DS1.2": (0, 1),  # the prescription was deleted (T04)
        "DS1.3": (0, 1),  # surgical stay (unit CHIR), no operative report
        "DS2.1": (2, 2),  # the ORU's level 1 and level 3 documents, both deposited
        "DS3.1": (0, 1),  # refused by the DMP: DMPClosed
        "DS4.1": (1, 1),  # the correspondent of the A01 got the letter over MSS Pro
        "DS4.2": (1, 1),  # the biology report went to the patient's mailbox
    }


def test_refusals_are_reported_and_the_rest_is_converted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "hl7", "convert", str(SCENARIO[2]), *map(str, MALFORMED))
    assert code == 1
    assert [orjson.loads(line)["type"] for line in out.splitlines()] == [
        "document.produced",
        "mss.sent",
    ]
    for path in MALFORMED:
        assert f"{path}#1: A" in err
    assert "zam_unknown_control_id (OBX^1^4): OBX-4: expected the MSH-10" in err
    assert "1 refused AR no_msh" in err


def test_several_messages_in_one_file_with_mllp_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch.hl7"
    batch.write_bytes(
        b"FHS|^~\\&|GAM\r"
        + b"".join(b"\x0b" + p.read_bytes() + b"\x1c\r" for p in SCENARIO[:2])
        + b"FTS|1\r"
    )
    code, out, err = run(capsys, "hl7", "convert", str(batch))
    assert code == 0
    assert [orjson.loads(line)["type"] for line in out.splitlines()] == ["stay.discharged"]
    assert "2 message(s), 1 event(s)" in err


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "hl7", "convert", str(tmp_path / "absent.hl7"))
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "m.toml"
    bad.write_text('[[facility]]\nsending_facility = "A"\nfiness = "1"\n', encoding="utf-8")
    code, _, err = run(capsys, "hl7", "convert", str(SCENARIO[0]), "--mapping", str(bad))
    assert code == 2 and "facility[1].finess" in err
    assert run(capsys, "hl7")[0] == 2


def test_the_mapping_file_decides_the_finess_of_adt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[[facility]]\nsending_facility = "CH-SUNES"\nfiness = "130000019"\n'
        'ipp_authorities = ["CH-SUNES"]\n',
        encoding="utf-8",
    )
    adt = [str(SCENARIO[0]), str(SCENARIO[1])]
    code, out, _ = run(capsys, "hl7", "convert", *adt, "--mapping", str(mapping))
    assert code == 0
    (stay,) = [orjson.loads(line) for line in out.splitlines()]
    assert stay["finess"] == "130000019"
    assert stay["surgical"] is False  # this mapping names no surgical unit
    monkeypatch.setenv("SUNES_HL7_MAPPING", str(mapping))
    code, out, _ = run(capsys, "hl7", "convert", *adt)
    assert orjson.loads(out)["finess"] == "130000019"
