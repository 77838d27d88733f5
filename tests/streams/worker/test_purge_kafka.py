"""Purge on a real broker: facts past the horizon leave the table and its changelog
(tombstones), the figures stay those of `sunes report`, and a later event for a purged stay
is refused `too_late`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rocksdict import AccessType, Rdict

from processors.report import compute_report
from processors.settings import Settings
from streams.testing import WorkerProcess, rows_of
from tests.builders import F1, deposited, discharged, establishment, mss_sent
from tests.kafka_tools import read_deadletters
from tests.streams.worker.test_worker_kafka import wait_for_rows
from topics.names import DMP, ESTABLISHMENTS, MSS, STAYS, TopicNames
from topics.validation import parse_record

pytestmark = pytest.mark.kafka

# Refused after 600 days; purged after 600 + 100 + 30 + 32 (processors.purge).
FLAGS = ("--retention-days", "600", "--lookback-days", "100")
RULES = Settings(lookback_days=100)  # the batch: the same counting rules, nothing refused
PRO = [{"document_id": "x", "type_code": "11490-0", "cda_level": 1, "ins_status": "qualifiee"}]

Timed = tuple[str, dict[str, Any], datetime | None]  # contract topic, event, record timestamp


def at(moment: datetime) -> str:
    return moment.isoformat()


def send(brokers: str, topics: TopicNames, messages: list[Timed]) -> None:
    """Publish, each with its Kafka record timestamp (None: the producer's clock)."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=brokers, acks="all")
        await producer.start()
        try:
            for topic, obj, stamp in messages:
                await producer.send_and_wait(
                    topics.named(topic),
                    orjson.dumps(obj),
                    key=obj["finess"].encode(),
                    timestamp_ms=None if stamp is None else int(stamp.timestamp() * 1000),
                )
        finally:
            await producer.stop()

    asyncio.run(run())


async def read_changelog(brokers: str, topic: str) -> list[tuple[bytes, bytes | None]]:
    """Every (key, value) of the table's changelog (its 4 partitions: the workers fixture's),
    from the beginning to the end offsets as they are when asked."""
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[bytes, bytes | None]] = []
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            for batch in (await consumer.getmany(*remaining, timeout_ms=1000)).values():
                found += [(record.key, record.value) for record in batch if record.key]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return found
    finally:
        await consumer.stop()


def purged(worker: WorkerProcess, kind: str) -> float:
    for line in (worker.get("/metrics") or b"").decode().splitlines():
        if line.startswith(f'sunes_purged_entries_total{{kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_purge_leaves_tombstones_and_the_figures_and_refuses_later_events(
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    tmp_path: Path,
) -> None:
    brokers, marker = kafka_bootstrap_servers, uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    old, old_received = now - timedelta(days=1300), now - timedelta(days=1280)
    recent = now - timedelta(days=10)
    old_stay, old_doc = f"S-old-{marker}", f"D-old-{marker}"
    correspondent = [{"rpps": "R1", "mss_address": "r1@x.mssante.fr"}]
    messages: list[Timed] = [
        (ESTABLISHMENTS, establishment(F1), None),
        # three and a half years ago, received then: accepted, and purged now
        (STAYS, discharged(old_stay, patient=f"P-old-{marker}", admitted=at(old),
                           discharged=at(old + timedelta(days=2)),
                           correspondents=correspondent), old_received),
        (DMP, deposited(old_doc, "11490-0", stay_id=old_stay, patient=f"P-old-{marker}",
                        produced=at(old + timedelta(days=2)),
                        deposited_at=at(old + timedelta(days=3))), old_received),
        (MSS, mss_sent("pro", "R1", sent=at(old + timedelta(days=3)), attachments=PRO),
         old_received),
        # ten days ago: kept; received now, it moves the worker's clock
        (STAYS, discharged(f"S-new-{marker}", patient=f"P-new-{marker}", admitted=at(recent),
                           discharged=at(recent + timedelta(days=2)),
                           correspondents=correspondent), None),
        (MSS, mss_sent("pro", "R1", sent=at(recent + timedelta(days=3)), attachments=PRO), None),
    ]  # fmt: skip
    records = [parse_record(orjson.dumps(obj)) for _, obj, _ in messages]
    expected = rows_of((r.as_json() for r in compute_report(records, RULES)), {F1})
    assert {r["period"] for r in expected} >= {old.strftime("%Y-%m"), recent.strftime("%Y-%m")}
    app_id = f"it-{uuid.uuid4().hex[:8]}"
    first_dir = tmp_path / "first"
    worker = workers(app_id, first_dir, *FLAGS)
    send(brokers, kafka_topics, messages)
    worker.wait_until(lambda: purged(worker, "stay") >= 1, 120, "the old stay to be purged")
    wait_for_rows([worker], {F1}, expected)
    assert purged(worker, "document") == 1 and purged(worker, "message") == 1
    assert "purged 1 stay entries of 750000001 (refusal horizon" in worker.log_tail(400)

    # the changelog: the old stay, document and units written, then tombstoned
    changelog = asyncio.run(read_changelog(brokers, f"{app_id}-facts-changelog"))
    last: dict[bytes, bytes | None] = {}
    for key, value in changelog:
        last[key] = value
    for key in (f"{F1}|s|{old_stay}", f"{F1}|d|{old_doc}", f"{F1}|us|{old_stay}"):
        assert key.encode() in last and last[key.encode()] is None, key
    assert last[f"{F1}|s|S-new-{marker}".encode()] is not None
    archived = [k for k, v in last.items() if b"|ua|" in k and v is not None]
    assert archived and not any(marker.encode() in (last[k] or b"") for k in archived)

    # a later event for the purged stay: too late at ingest (received now), and at the
    # establishment stage when its record timestamp is old (the horizon of the last purge)
    again = [
        (STAYS, discharged(old_stay, patient=f"P-old-{marker}", admitted=at(old),
                           discharged=at(old + timedelta(days=4))), stamp)
        for stamp in (None, old_received + timedelta(days=1))
    ]  # fmt: skip
    send(brokers, kafka_topics, again)
    letters = read_deadletters(
        brokers, kafka_topics.deadletter, lambda value: old_stay.encode() in value, 2
    )
    reasons = sorted(headers["sunes-reason"] for _, headers in letters)
    assert [h["sunes-reason-code"] for _, h in letters] == ["too_late", "too_late"]
    assert "before the horizon" in reasons[0] and "last purge" in reasons[0]
    assert "before the retention horizon" in reasons[1]
    assert not any(old_stay in reason for reason in reasons)
    wait_for_rows([worker], {F1}, expected)

    # a restart on its disk, and a new owner that reads the changelog: the same figures
    worker.stop()
    restarted = workers(app_id, first_dir, *FLAGS)
    wait_for_rows([restarted], {F1}, expected)
    restarted.stop()
    from_changelog = workers(app_id, tmp_path / "second", *FLAGS)
    wait_for_rows([from_changelog], {F1}, expected)
    from_changelog.stop()
    assert _stored_keys_with(first_dir, f"S-new-{marker}".encode())  # the reader reads
    assert not _stored_keys_with(first_dir, old_stay.encode())
    assert not _stored_keys_with(tmp_path / "second", old_stay.encode())


def _stored_keys_with(data_dir: Path, text: bytes) -> list[bytes]:
    """Keys of the worker's RocksDB tables (stopped) that contain `text`."""
    found, tables = [], list(data_dir.rglob("facts-*.db"))
    assert tables, f"no table under {data_dir}"
    for path in tables:
        db = Rdict(str(path), access_type=AccessType.read_only())
        try:
            found += [k for k, _ in db.items() if isinstance(k, bytes) and text in k]
        finally:
            db.close()
    return found
