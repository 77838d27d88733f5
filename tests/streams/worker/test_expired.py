"""Records expired before the group applied them: counted once per hole, shown in /health;
expired before a fresh group's first read: shown, not counted; a broker that does not answer
never holds the assignment. (On a real broker: test_expired_kafka.py.)"""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streams.kafka_clients import Security
from streams.worker.expired import Expired, ExpiredRecordsCheck, _stop_quietly, expired_of

TP = TopicPartition("sunes.stays.v1", 2)


def test_a_hole_is_the_records_between_the_committed_offset_and_the_log_start() -> None:
    assert expired_of("g", TP, 10, 10) is None
    assert expired_of("g", TP, 12, 10) is None
    assert expired_of("g", TP, None, 0) is None
    hole = expired_of("g", TP, 4, 10)
    assert hole == Expired("g", "sunes.stays.v1", 2, 4, 10)
    assert hole is not None and hole.count == 6
    never = expired_of("g", TP, None, 7)
    assert never is not None and never.count == 7


def test_a_hole_is_counted_logged_and_shown_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    check = ExpiredRecordsCheck("127.0.0.1:1", Security(), registry)
    hole = Expired("app-ingest", "sunes.stays.v1", 2, 4, 10)
    with caplog.at_level(logging.WARNING):
        check._report(hole)
        check._report(hole)  # a second assignment sees the same hole
        check._report(Expired("app-ingest", "sunes.dmp.v1", 0, None, 3))
    labels = {"topic": "sunes.stays.v1", "partition": "2"}
    assert registry.get_sample_value("sunes_records_expired_total", labels) == 6
    assert (
        registry.get_sample_value(
            "sunes_records_expired_total", {"topic": "sunes.dmp.v1", "partition": "0"}
        )
        is None
    )
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "RECORDS EXPIRED UNREAD on sunes.stays.v1[2]" in errors[0].message
    assert check.health() == {
        "expired_records": {
            "sunes.stays.v1/2": {"group": "app-ingest", "committed": 4, "log_start": 10,
                                 "expired": 6},
        },
        "expired_before_first_read": {
            "sunes.dmp.v1/0": {"group": "app-ingest", "committed": None, "log_start": 3,
                               "expired": 3},
        },
    }  # fmt: skip


def test_no_broker_is_said_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    check = ExpiredRecordsCheck("127.0.0.1:1", Security(), CollectorRegistry())
    with caplog.at_level(logging.WARNING):
        asyncio.run(check.check("app-ingest", [TP]))
    assert "cannot check app-ingest's offsets" in caplog.text
    assert check.health() == {"expired_records": {}, "expired_before_first_read": {}}


def test_a_hole_adopted_from_the_ingest_process_is_counted_once_and_not_logged_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    check = ExpiredRecordsCheck("127.0.0.1:1", Security(), registry)
    lost = Expired("app-ingest", "sunes.stays.v1", 2, 4, 10)
    never = Expired("app-ingest", "sunes.dmp.v1", 0, None, 3)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # every report of the ingest process carries the holes it knows
            check.adopt(lost)
            check.adopt(never)
    assert caplog.records == []  # the ingest process logged them
    labels = {"topic": "sunes.stays.v1", "partition": "2"}
    assert registry.get_sample_value("sunes_records_expired_total", labels) == 6
    assert check.lost == {"sunes.stays.v1/2": lost}
    assert check.before_first_read == {"sunes.dmp.v1/0": never}
    assert sorted(check.holes(), key=str) == sorted([lost, never], key=str)


def test_a_cancelled_error_not_of_the_check_is_a_failure_to_check_not_a_stop(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CancelledError passed on by a client (aiokafka's consumer stop, see
    `_stop_quietly`) must not end the caller: at an assignment it ended the ingest stage."""
    check = ExpiredRecordsCheck("127.0.0.1:1", Security(), CollectorRegistry())

    async def leaks(group: str, tps: list[TopicPartition]) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(check, "_offsets", leaks)
    with caplog.at_level(logging.WARNING):
        asyncio.run(check.check("app-ingest", [TP]))  # returns
    assert "cannot check app-ingest's offsets" in caplog.text and "CancelledError" in caplog.text


def test_a_cancelled_check_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    check = ExpiredRecordsCheck("127.0.0.1:1", Security(), CollectorRegistry())

    async def hangs(group: str, tps: list[TopicPartition]) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(check, "_offsets", hangs)

    async def cancel_it() -> None:
        task = asyncio.ensure_future(check.check("app-ingest", [TP]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())


def test_stop_quietly_swallows_a_passed_on_cancel_but_not_its_own() -> None:
    async def leaking_stop() -> None:
        raise asyncio.CancelledError  # what aiokafka's stop passes on

    async def outer() -> None:
        await _stop_quietly(leaking_stop())  # not cancelled: returns
        own = asyncio.ensure_future(_stop_quietly(asyncio.sleep(60)))
        await asyncio.sleep(0.01)
        own.cancel()
        with pytest.raises(asyncio.CancelledError):
            await own

    asyncio.run(outer())
