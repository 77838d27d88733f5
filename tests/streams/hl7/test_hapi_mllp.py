"""End to end with an HL7 client nobody here wrote: HAPI HL7v2 (Maven Central) sends the
scenario of tests/fixtures/hl7/scenario/ (admissions, discharges, a letter and its ZAM, a
replacement, a deletion, an ORU with levels 1 and 3, a refused deposit, an A13) over MLLP to
`sunes hl7 listen` on a real broker; a `sunes worker` on the same topics must then serve the
figures of `sunes report` over `sunes hl7 convert` of the same files, and the figures counted
by hand (tests/fixtures/hl7/README.md). Then the same with the listener SIGKILLed in the
middle of the feed and restarted: HAPI re-sends what was not acknowledged, nothing is lost,
and every event counts once.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.hl7.testing import ListenerProcess
from streams.testing import WorkerProcess, rows_of
from tests import builders
from tests.kafka_tools import publish_on
from tests.streams.hl7.listening import SCENARIO, event_topics, read_topics
from topics.names import ESTABLISHMENTS, TopicNames

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).parents[3]
SUNES = str(Path(sys.executable).with_name("sunes"))
FINESS = "750000010"  # CH-SUNES in the built-in mapping
REGISTRY = builders.establishment(FINESS, window="F4", has_lab=True, has_imaging=True)
# Counted by hand from the messages (tests/fixtures/hl7/README.md): (numerator, denominator).
BY_HAND = {
    ("DS1.1", "2026-01"): (1, 1),  # stay 1's letter, replaced and deposited; stay 2 cancelled
    ("DS1.2", "2026-01"): (0, 1),  # the prescription was deposited, then deleted
    ("DS1.3", "2026-01"): (0, 1),  # a surgical stay (unit CHIR), no operative report
    ("DS2.1", "2026-01"): (2, 2),  # the ORU's level 1 and level 3 reports, both deposited
    ("DS3.1", "2026-01"): (0, 1),  # the imaging report's deposit failed (DMPClosed)
    ("DS4.1", "2026-01"): (1, 1),  # the correspondent of the A01 got the letter by MSS Pro
    ("DS4.2", "2026-01"): (1, 1),  # the patient got the biology by MSS citoyenne
}


@pytest.fixture(scope="session")
def hapi() -> list[str]:
    """The command that runs the HAPI client (fetched and compiled by scripts/fetch-hapi-jars.sh,
    which `make test` runs through ensure-test-tools.sh): a missing JDK fails, never skips."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fetch-hapi-jars.sh")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"scripts/fetch-hapi-jars.sh failed:\n{done.stderr}"
    home = Path(done.stdout.strip())
    return ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp",
            f"{home}/jars/*:{home}/classes", "SendHl7"]  # fmt: skip


@dataclass
class Pipeline:
    """A listener and a worker on this test's topics, the registry published."""

    listener: ListenerProcess
    worker: WorkerProcess
    brokers: str
    topics: TopicNames
    tmp_path: Path

    def published_event_ids(self) -> list[str]:
        published = read_topics(self.brokers, event_topics(self.topics))
        return [orjson.loads(value)["event_id"] for _, _, value in published]


@pytest.fixture
def pipeline(
    hl7_listener: ListenerProcess,
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    tmp_path: Path,
) -> Pipeline:
    registry = (ESTABLISHMENTS, FINESS.encode(), orjson.dumps(REGISTRY))
    publish_on(kafka_bootstrap_servers, kafka_topics, [registry])
    worker = workers(f"hl7-{uuid.uuid4().hex[:8]}")
    return Pipeline(hl7_listener, worker, kafka_bootstrap_servers, kafka_topics, tmp_path)


def reference(tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`sunes hl7 convert` of the scenario, and `sunes report` over it and the registry."""
    events = tmp_path / "events.ndjson"
    subprocess.run([SUNES, "hl7", "convert", *map(str, SCENARIO), "--output", str(events)],
                   check=True, capture_output=True)  # fmt: skip
    converted = [orjson.loads(line) for line in events.read_bytes().splitlines()]
    report_input = tmp_path / "report-input.ndjson"
    report_input.write_bytes(orjson.dumps(REGISTRY) + b"\n" + events.read_bytes())
    report = subprocess.run(
        [SUNES, "report", "--input", str(report_input), "--format", "json"],
        check=True, capture_output=True,
    )  # fmt: skip
    return converted, rows_of(orjson.loads(report.stdout), {FINESS})


def acks(output: str) -> dict[str, tuple[str, str]]:
    """SendHl7's lines: file name → (MSA-1, MSA-2)."""
    lines = [line.split("\t") for line in output.splitlines() if line.strip()]
    return {Path(fields[0]).name: (fields[1], fields[2]) for fields in lines}


def wait_for_figures(worker: WorkerProcess, expected: list[dict[str, Any]]) -> None:
    latest: list[dict[str, Any]] = []

    def matches() -> bool:
        nonlocal latest
        latest = rows_of(worker.indicators(), {FINESS})
        return latest == expected

    try:
        worker.wait_until(matches, 120, "/indicators to equal sunes report")
    except AssertionError:
        assert latest == expected  # row by row
        raise


def check_by_hand(rows: list[dict[str, Any]]) -> None:
    got = {(r["indicator"], r["period"]): (r["numerator"], r["denominator"]) for r in rows}
    assert got == BY_HAND


def test_hapi_sends_the_scenario_and_the_worker_equals_the_report_and_the_hand_count(
    hapi: list[str], pipeline: Pipeline
) -> None:
    assert len(SCENARIO) == 16, "tests/fixtures/hl7/scenario/ is incomplete"
    converted, expected = reference(pipeline.tmp_path)
    check_by_hand(expected)
    sent = subprocess.run(
        [*hapi, "--retry-seconds", "30", "127.0.0.1", str(pipeline.listener.port),
         *map(str, SCENARIO)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    control_ids = {p.name: p.read_bytes().split(b"|", 10)[9].decode() for p in SCENARIO}
    assert acks(sent.stdout) == {name: ("AA", cid) for name, cid in control_ids.items()}
    wait_for_figures(pipeline.worker, expected)
    assert sorted(pipeline.published_event_ids()) == sorted(e["event_id"] for e in converted)


def test_a_sigkill_mid_feed_loses_nothing_and_counts_each_event_once(
    hapi: list[str], pipeline: Pipeline
) -> None:
    listener = pipeline.listener
    converted, expected = reference(pipeline.tmp_path)
    client = subprocess.Popen(
        [*hapi, "--retry-seconds", "120", "--pause-ms", "250", "127.0.0.1", str(listener.port),
         *map(str, SCENARIO)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while answered(listener) < 7:  # about half the feed, then SIGKILL mid-feed
            assert client.poll() is None, client.stderr.read() if client.stderr else ""
            time.sleep(0.05)
        listener.kill()
        time.sleep(1)  # HAPI's sends fail meanwhile: connection refused, retried
        listener.start()
        out, err = client.communicate(timeout=300)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err
    assert {code for code, _ in acks(out).values()} == {"AA"}
    assert len(acks(out)) == len(SCENARIO)
    assert "retrying" in err  # the kill was felt: HAPI re-sent at least once
    ids = pipeline.published_event_ids()
    assert set(ids) == {e["event_id"] for e in converted}  # nothing lost, nothing new
    wait_for_figures(pipeline.worker, expected)  # duplicates of a re-send count once
    check_by_hand(rows_of(pipeline.worker.indicators(), {FINESS}))


def answered(listener: ListenerProcess) -> float:
    """Messages the listener has answered AA so far (its /metrics)."""
    total = 0.0
    for line in listener.metrics().splitlines():
        if line.startswith("sunes_hl7_messages_total{") and 'ack="AA"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
