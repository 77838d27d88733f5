"""`sunes simulate --output`: end to end through the CLI, and `sunes report` on its file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from processors.catalogue import RATE_INDICATORS
from processors.report import InvalidLine, compute_report, read_ndjson
from streams.cli import main
from topics.names import DMP, ESTABLISHMENTS, MSS, STAYS, TOPIC_OF_TYPE
from topics.records import EstablishmentRecord
from topics.validation import InvalidRecord, parse_record

SMALL = ["--establishments", "3", "--stays-per-day", "10", "--days", "20", "--seed", "4"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lines_by_topic(path: Path) -> tuple[Counter[str], int]:
    topics: Counter[str] = Counter()
    invalid = 0
    for line in path.read_bytes().splitlines():
        try:
            topics[TOPIC_OF_TYPE[parse_record(line).type]] += 1
        except InvalidRecord:
            invalid += 1
    return topics, invalid


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default simulation (4 establishments, 30 days), written by the command."""
    path = tmp_path_factory.mktemp("simulate") / "traffic.ndjson"
    assert main(["simulate", "--output", str(path), "--seed", "1"]) == 0
    return path


def test_simulate_writes_ndjson_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out.ndjson"
    code, out, err = run(capsys, "simulate", *SMALL, "--output", str(path))
    assert code == 0
    assert out == ""
    topics, invalid = lines_by_topic(path)
    assert invalid > 0
    total = sum(topics.values()) + invalid
    assert f"simulated {total:,} message(s) to {path}" in err
    assert f"invalid: {invalid:,} (" in err
    # Invalid lines are counted on the topic their producer would have used.
    assert "sunes.establishments.v1              3" in err
    assert "duplicates (same event_id re-sent):" in err


def test_the_same_seed_writes_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, other = tmp_path / "a.ndjson", tmp_path / "b.ndjson", tmp_path / "c.ndjson"
    assert run(capsys, "simulate", *SMALL, "--output", str(first))[0] == 0
    assert run(capsys, "simulate", *SMALL, "--output", str(second))[0] == 0
    assert run(capsys, "simulate", *SMALL, "--seed", "5", "--output", str(other))[0] == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_options_reach_the_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "clean.ndjson"
    argv = [*SMALL, "--windows", "F4", "--invalid-fraction", "0", "--duplicate-fraction", "0"]
    code, _, err = run(capsys, "simulate", *argv, "--start", "2023-09-01", "-o", str(path))
    assert code == 0
    _, invalid = lines_by_topic(path)
    assert invalid == 0
    assert "duplicates (same event_id re-sent): 0" in err
    records = [parse_record(line) for line in path.read_bytes().splitlines()]
    registry = [r for r in records if isinstance(r, EstablishmentRecord)]
    assert {r.window for r in registry} == {"F4"}
    first_day = min(r.occurred_at for r in records if not isinstance(r, EstablishmentRecord))
    assert first_day.date().isoformat() >= "2023-08-31"  # Paris midnight in UTC


def test_max_messages_and_stdout(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["simulate", *SMALL, "--max-messages", "50", "--output", "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert len(out.splitlines()) == 50
    assert b"simulated 50 message(s) to stdout" in err


def test_rate_and_duration_pace_an_endless_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "paced.ndjson"
    argv = ["simulate", "--rate", "400", "--duration", "0.5", "--output", str(path)]
    code, _, err = run(capsys, *argv)
    assert code == 0
    written = len(path.read_bytes().splitlines())
    assert 50 <= written <= 201  # 400/s for 0.5 s, never faster
    assert f"simulated {written:,} message(s)" in err


def test_report_on_generated_traffic_has_every_indicator_and_both_extremes(
    generated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "report", "--input", str(generated), "--format", "json")
    assert code == 1  # the invalid lines are reported, and skipped
    assert "invalid line(s) skipped" in err
    rows: list[dict[str, Any]] = orjson.loads(out)
    assert {row["indicator"] for row in rows} == set(RATE_INDICATORS)

    registry = [
        parse_record(line) for line in generated.read_bytes().splitlines()[:4]
    ]  # the registry records come first
    assert all(isinstance(r, EstablishmentRecord) for r in registry)
    under, above = registry[0], registry[1]

    def window_rows(record: object) -> list[dict[str, Any]]:
        assert isinstance(record, EstablishmentRecord)
        return [
            row
            for row in rows
            if row["finess"] == record.finess
            and row["period"] == record.window
            and row["target"] is not None
        ]

    # Every indicator with a target of its window: one establishment under, one above.
    assert len(window_rows(under)) == len(window_rows(above)) == 8
    assert all(row["ratio"] < row["target"] for row in window_rows(under))
    assert all(row["ratio"] >= row["target"] for row in window_rows(above))


def topics_in_file_order(path: Path) -> list[str]:
    """The topic of each line (all valid), in the file's order."""
    return [TOPIC_OF_TYPE[parse_record(line).type] for line in path.read_bytes().splitlines()]


def test_order_backfill_writes_each_topic_in_turn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live, backfill = tmp_path / "live.ndjson", tmp_path / "backfill.ndjson"
    assert run(capsys, "simulate", *SMALL, "--output", str(live))[0] == 0
    code, _, err = run(capsys, "simulate", *SMALL, "--order", "backfill", "-o", str(backfill))
    assert code == 0
    assert sorted(live.read_bytes().splitlines()) == sorted(backfill.read_bytes().splitlines())
    assert lines_by_topic(backfill) == lines_by_topic(live)
    assert "invalid: 0" not in err
    clean = tmp_path / "clean.ndjson"
    argv = [*SMALL, "--order", "backfill", "--invalid-fraction", "0", "-o", str(clean)]
    assert run(capsys, "simulate", *argv)[0] == 0
    topics = topics_in_file_order(clean)
    runs = [t for i, t in enumerate(topics) if i == 0 or topics[i - 1] != t]
    assert runs == [ESTABLISHMENTS, STAYS, DMP, MSS]


def test_every_order_gives_the_same_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["--establishments", "3", "--days", "60", "--stays-per-day", "5", "--seed", "8"]
    reports: dict[str, list[Any]] = {}
    for order in ("live", "backfill", "shuffled"):
        path = tmp_path / f"{order}.ndjson"
        assert run(capsys, "simulate", *small, "--order", order, "-o", str(path))[0] == 0
        records = [r for _, r in read_ndjson(path) if not isinstance(r, InvalidLine)]
        reports[order] = compute_report(records)
    assert reports["live"]
    assert reports["backfill"] == reports["live"]
    assert reports["shuffled"] == reports["live"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give --output FILE.ndjson, or --brokers HOST:PORT"),
        (["--output", "x.ndjson", "--brokers", "127.0.0.1:9"], "not both"),
        (["--output", "x.ndjson", "--windows", "F9"], "unknown window(s) F9"),
        (["--output", "x.ndjson", "--invalid-fraction", "1.5"], "invalid fraction"),
        (["--output", "x.ndjson", "--rate", "-1"], "--rate must be 0 or more"),
        (
            ["--output", "x.ndjson", "--duration", "5", "--order", "backfill"],
            "--order backfill needs the whole history before its first message, and without "
            "--days the stream is endless: give --days D",
        ),
        (["--output", "x.ndjson", "--duration", "5", "--order", "shuffled"], "give --days D"),
    ],
)
def test_usage_errors(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "simulate", *argv)
    assert code == 2
    assert message in err
    assert not (tmp_path / "x.ndjson").exists()
