"""The establishment stage in process (Faust's agent test context, memory store): bundles in,
figures out, failures isolated and dead-lettered. The same stage on a real broker:
test_worker_kafka.py, test_worker_orders.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from streams.worker.app import SunesWorker
from streams.worker.bundles import (
    encode_bundle,
    encode_bundle_v1,
    encode_bundle_v2,
    event_item,
    event_row_v2,
)
from streams.worker.config import WorkerConfig
from tests import builders
from tests.builders import F1
from topics.errors import INTERNAL_ERROR, INVALID_FIELD, INVALID_JSON
from topics.validation import InvalidRecord

LETTER = "11490-0"


class Stage:
    def __init__(self, worker: SunesWorker, context: Any) -> None:
        self.worker = worker
        self.context = context
        self.deadletters: list[tuple[bytes, InvalidRecord]] = []

    async def put(self, *events: dict[str, Any]) -> None:
        """A bundle as the ingest stage writes it (version 3: the records by type)."""
        records = [builders.parse(event) for event in events]
        items = [event_item(record) for record in records]
        types = [record.type for record in records]  # type: ignore[union-attr]
        await self.put_value(encode_bundle(types, items, [None] * len(items)))

    async def put_v2(self, *events: dict[str, Any]) -> None:
        """A bundle of the previous format (version 2: typed rows), as a worker before the
        upgrade left it on the internal topic."""
        rows = [event_row_v2(builders.parse(event)) for event in events]  # type: ignore[arg-type]
        await self.put_value(encode_bundle_v2(rows, [None] * len(rows)))

    async def put_v1(self, *events: dict[str, Any]) -> None:
        """A bundle of the previous format (version 1: the original JSON objects), as a worker
        before the upgrade left it on the internal topic."""
        values = [orjson.dumps(event) for event in events]
        await self.put_value(encode_bundle_v1(values, [None] * len(values)))

    async def put_value(self, value: bytes) -> None:
        await self.context.put(key=F1.encode(), value=value)

    def figures(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {
            (r.indicator, r.period): (r.numerator, r.denominator) for r in self.worker.stage.rows()
        }


@pytest.fixture
async def stage() -> AsyncIterator[Stage]:
    worker = SunesWorker(WorkerConfig(store="memory://", app_id="in-process"))
    worker.app.finalize()
    worker.app.flow_control.resume()  # or put() waits forever (ARCHITECTURE.md)
    worker.stage.recovering = False
    record = builders.parse(builders.establishment())
    worker.establishments.set_registry(record)  # type: ignore[arg-type]
    (agent,) = worker.app.agents.values()
    async with agent.test_context() as context:
        harness = Stage(worker, context)

        async def deadletter(raw: bytes, key: bytes | None, error: InvalidRecord, _: Any) -> None:
            harness.deadletters.append((raw, error))

        worker.stage.deadletter = deadletter
        yield harness


async def test_a_bundle_counts_once_even_when_sent_twice(stage: Stage) -> None:
    events = (builders.discharged("S1"), builders.deposited("D1", LETTER, stay_id="S1"))
    await stage.put(*events)
    assert stage.figures()[("DS1.1", "2023-01")] == (1, 1)
    await stage.put(*events)  # at-least-once: the same bundle again
    assert stage.figures()[("DS1.1", "2023-01")] == (1, 1)
    assert stage.figures()[("DS1.1", "F2")] == (1, 1)
    assert stage.deadletters == []


async def test_an_event_that_fails_is_dead_lettered_alone(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    establishments = stage.worker.establishments

    class Failing:
        """The worker's Establishments but for apply, which fails on one stay: the stage's
        reference replaced (compiled with mypyc, an instance's method cannot be patched)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(establishments, name)

        def apply(self, record: Any) -> bool:
            if getattr(record, "stay_id", None) == "S-bug":
                raise RuntimeError("a bug")
            return establishments.apply(record)

    monkeypatch.setattr(stage.worker.stage, "establishments", Failing())
    await stage.put(builders.discharged("S1"), builders.discharged("S-bug", patient="P2"),
                    builders.discharged("S3", patient="P3"))  # fmt: skip
    assert stage.figures()[("DS1.1", "2023-01")] == (0, 2)
    ((raw, error),) = stage.deadletters
    assert orjson.loads(raw)["stay_id"] == "S-bug"
    assert (error.code, error.reason) == (INTERNAL_ERROR, "internal error: RuntimeError")
    assert stage.worker.health()["failing_establishments"] == [F1]


async def test_an_old_format_bundle_is_still_applied(stage: Stage) -> None:
    """Bundles of versions 1 and 2 left on the internal topic by previous releases count the
    same as those of version 3, and a replay of one as another counts once."""
    events = (builders.discharged("S1"), builders.deposited("D1", LETTER, stay_id="S1"))
    await stage.put_v1(*events)
    assert stage.figures()[("DS1.1", "2023-01")] == (1, 1)
    await stage.put(*events)
    await stage.put_v2(*events)
    await stage.put_v1(builders.discharged("S2", patient="P2"))
    assert stage.figures()[("DS1.1", "2023-01")] == (1, 2)
    await stage.put_v2(builders.discharged("S3", patient="P3"))
    await stage.put(builders.deposited("D3", LETTER, patient="P3", stay_id="S3"))
    assert stage.figures()[("DS1.1", "2023-01")] == (2, 3)
    assert stage.deadletters == []


async def test_a_foreign_version_2_bundle_is_dead_lettered(stage: Stage) -> None:
    """A writer on our internal topic that is not our ingest stage: a malformed bundle is
    dead-lettered whole, a malformed row alone; the rest of the bundle counts."""
    await stage.put_value(b"\x02[[null],[1]")
    good = event_row_v2(builders.parse(builders.discharged("S1")))  # type: ignore[arg-type]
    rows = [b'["stay.discharged","e"]', b'["establishment"]', b"[]", b'"x"', good]
    await stage.put_value(encode_bundle_v2(rows, [None] * len(rows)))
    assert stage.figures()[("DS1.1", "2023-01")] == (0, 1)
    codes = [(error.code, error.reason) for _, error in stage.deadletters]
    assert codes == [
        (INVALID_JSON, codes[0][1]),
        (INVALID_FIELD, "not a validated event: IndexError"),  # too short a row
        (INVALID_FIELD, "not a validated event: KeyError"),  # not an event type
        (INVALID_FIELD, "not a validated event: IndexError"),  # an empty row
        (INVALID_FIELD, "not a validated event: TypeError"),  # not a row
    ]
    assert codes[0][1].startswith("not a bundle of events")


async def test_a_foreign_version_3_bundle_is_dead_lettered_whole(stage: Stage) -> None:
    """Version 3 is decoded whole, straight into the records: a malformed one is refused
    whole (only a foreign writer on our internal topic), the next bundle counts."""
    await stage.put_value(b'\x03[[null],"0",[{"type":"stay.discharged"}],[],[],[],[],[],[]]')
    await stage.put_value(b'\x03[[null],"7",[],[],[],[],[],[],[]]')
    await stage.put(builders.discharged("S1"))
    assert stage.figures()[("DS1.1", "2023-01")] == (0, 1)
    reasons = [(error.code, error.reason[:22]) for _, error in stage.deadletters]
    assert reasons == [(INVALID_JSON, "not a bundle of events")] * 2


async def test_a_registry_record_on_the_internal_topic_is_dead_lettered(stage: Stage) -> None:
    await stage.put_v1(builders.establishment(), builders.discharged("S1"))
    assert stage.figures()[("DS1.1", "2023-01")] == (0, 1)
    ((_, error),) = stage.deadletters
    assert error.code == INVALID_FIELD
    assert error.reason == "not a validated event: TypeError"
