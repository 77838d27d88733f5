"""`sunes publish`: a real broker receives what the file holds, topic by topic, keyed by FINESS.

Each Kafka test gets its own in-memory Tansu broker: publishing uses the real input topic
names, which must not leak into the session broker other suites read.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.brokers import Broker, start_broker
from streams.cli import main
from streams.cli.publish import Progress
from streams.kafka_clients import CLIENT_PROFILE_ENV
from tests.kafka_tools import read_topics as read_all
from topics.names import ESTABLISHMENTS, INPUT_TOPICS, TOPIC_OF_TYPE
from topics.validation import InvalidRecord, parse_record

INVALID_TOPIC = "sunes.test-invalid.v1"


@pytest.fixture
def tansu() -> Iterator[Broker]:
    broker = start_broker("tansu")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("publish") / "traffic.ndjson"
    argv = ["--establishments", "2", "--stays-per-day", "8", "--days", "6", "--seed", "9"]
    assert main(["simulate", *argv, "--invalid-fraction", "0.03", "--output", str(path)]) == 0
    return path


def expected(path: Path) -> tuple[Counter[str], list[int]]:
    """Valid lines per topic, and the numbers of the invalid lines."""
    topics: Counter[str] = Counter()
    invalid = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            topics[TOPIC_OF_TYPE[parse_record(line).type]] += 1
        except InvalidRecord:
            invalid.append(number)
    return topics, invalid


async def read_topics(
    bootstrap_servers: str, topics: list[str]
) -> tuple[Counter[str], list[tuple[str, bytes | None, bytes]]]:
    """Every message of `topics`, and how many per topic."""
    messages = [(t, k, v or b"") for t, k, v in await read_all(bootstrap_servers, topics)]
    return Counter(topic for topic, _, _ in messages), messages


@pytest.mark.kafka
def test_publish_sends_valid_lines_to_their_topics_keyed_by_finess(
    tansu: Broker, traffic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    want, invalid_lines = expected(traffic)
    assert invalid_lines
    code = main(
        ["publish", str(traffic), "--brokers", tansu.bootstrap_servers, "--broker-kind", "tansu"]
    )
    _, err = capsys.readouterr()

    assert code == 1  # invalid lines were found (and left out)
    for number in invalid_lines:
        assert f"{traffic}:{number}: invalid (" in err
    assert f"published {sum(want.values()):,} message(s)" in err
    assert "not published" in err

    topics = [spec.name for spec in INPUT_TOPICS]
    got, messages = asyncio.run(read_topics(tansu.bootstrap_servers, topics))
    assert got == want
    for topic, key, value in messages:
        record = parse_record(value)
        assert key == record.finess.encode()
        assert topic == TOPIC_OF_TYPE[record.type]
    assert got[ESTABLISHMENTS] == 2


@pytest.mark.kafka
def test_include_invalid_publishes_them_raw_to_the_invalid_topic(
    tansu: Broker,
    traffic: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", tansu.bootstrap_servers)
    monkeypatch.setenv(CLIENT_PROFILE_ENV, "tansu")  # the Tansu producer settings, from the env
    _, invalid_lines = expected(traffic)
    argv = ["publish", str(traffic), "--include-invalid", "--invalid-topic", INVALID_TOPIC]
    code = main([*argv, "--max-reported", "2"])
    _, err = capsys.readouterr()

    assert code == 1
    assert f"... and {len(invalid_lines) - 2} more invalid line(s) not shown" in err
    assert f"published as they are to {INVALID_TOPIC}" in err
    got, messages = asyncio.run(read_topics(tansu.bootstrap_servers, [INVALID_TOPIC]))
    assert got == Counter({INVALID_TOPIC: len(invalid_lines)})
    lines = traffic.read_bytes().splitlines()
    assert sorted(value for _, _, value in messages) == sorted(lines[n - 1] for n in invalid_lines)


@pytest.mark.kafka
def test_a_clean_file_publishes_with_exit_status_0(
    tansu: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clean.ndjson"
    argv = ["--establishments", "1", "--days", "2", "--invalid-fraction", "0", "-o", str(path)]
    assert main(["simulate", *argv]) == 0
    want, _ = expected(path)
    code = main(
        ["publish", str(path), "--brokers", tansu.bootstrap_servers, "--broker-kind", "tansu"]
    )
    _, err = capsys.readouterr()
    assert code == 0
    assert "events/s" in err
    got, _ = asyncio.run(read_topics(tansu.bootstrap_servers, [s.name for s in INPUT_TOPICS]))
    assert got == want


@pytest.mark.kafka
def test_simulate_publishes_straight_to_kafka(
    tansu: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--establishments", "2", "--stays-per-day", "5", "--days", "3", "--seed", "2"]
    code = main(["simulate", *argv, "--brokers", tansu.bootstrap_servers, "--broker-kind", "tansu"])
    _, err = capsys.readouterr()
    assert code == 0
    got, _ = asyncio.run(read_topics(tansu.bootstrap_servers, [s.name for s in INPUT_TOPICS]))
    assert f"simulated {sum(got.values()):,} message(s) to {tansu.bootstrap_servers}" in err
    for topic, count in got.items():
        assert f"{topic:<28}{count:>10,}" in err
    assert got[ESTABLISHMENTS] == 2


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.ndjson"
    code = main(["publish", str(missing), "--brokers", "127.0.0.1:9"])
    _, err = capsys.readouterr()
    assert code == 2
    assert f"{missing} does not exist" in err
    assert "sunes simulate --output" in err  # how to get one


def test_no_brokers_is_a_usage_error(
    traffic: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    code = main(["publish", str(traffic)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "give --brokers HOST:PORT or set KAFKA_BOOTSTRAP_SERVERS" in err


def test_an_unreachable_broker_is_reported(
    traffic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.brokers._common import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    code = main(["publish", str(traffic), "--brokers", address])
    _, err = capsys.readouterr()
    assert code == 3
    assert address in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_draws_only_on_a_terminal() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(1000, stream)
        progress.update(500, 42)
        progress.clear()
    assert "[###############---------------]  50% 42 lines" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\033[K")
    assert pipe.getvalue() == ""
