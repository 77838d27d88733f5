"""The recomputation in the establishment agent (in process, memory store): an establishment
counted under other settings is withheld from /indicators, /metrics and its worklists until its
request comes through the agent, then shows the figures of the new settings. On a real broker
with restarts: test_recompute_kafka.py."""

from __future__ import annotations

from typing import Any

import pytest

from processors.settings import Settings
from streams.worker.recompute import REQUEST
from streams.worker.worklists import WorklistError
from tests import builders
from tests.builders import F1
from tests.streams.worker.test_establishments import LETTER, Stage, stage  # noqa: F401

LATE_LETTER = builders.deposited(
    "D1", LETTER, stay_id="S1", deposited_at="2023-01-20T10:00:00+01:00"
)  # 8 days after the discharge: in time with 30 days of grace, late with 5


async def test_an_outdated_establishment_is_withheld_until_recomputed(stage: Stage) -> None:  # noqa: F811
    await stage.put(builders.discharged("S1"), LATE_LETTER)
    assert stage.figures()[("DS1.1", "2023-01")] == (1, 1)
    worker, establishments = stage.worker, stage.worker.establishments

    # as after a restart with --grace-days 5 on the same store
    establishments.settings = Settings(grace_days=5)
    establishments.recover()
    assert establishments.outdated == {F1}
    assert worker.recomputation.planned() == [F1]
    assert stage.figures() == {}  # /indicators
    assert worker.stage.current() == []  # /metrics
    with pytest.raises(WorklistError) as refused:
        worker.stage.units(F1, "DS1.1", "2023-01")
    assert refused.value.status == 503
    health = worker.health()
    assert health["status"] == "recomputing"
    assert health["recomputing"] == {"establishments": 1, "done": 0, "left": 1, "units": 0}

    await stage.context.put(key=F1.encode(), value=REQUEST)
    assert stage.figures()[("DS1.1", "2023-01")] == (0, 1)
    assert [est.finess for est in worker.stage.current()] == [F1]
    health = worker.health()
    assert health["status"] == "ok"
    assert health["recomputing"] == {"establishments": 1, "done": 1, "left": 0, "units": 2}
    await stage.context.put(key=F1.encode(), value=REQUEST)  # asked twice: nothing to do
    assert worker.health()["recomputing"]["units"] == 2
    assert stage.deadletters == []


async def test_a_recomputation_that_fails_keeps_the_figures_withheld_and_says_so(
    stage: Stage,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await stage.put(builders.discharged("S1"), LATE_LETTER)
    worker, establishments = stage.worker, stage.worker.establishments
    establishments.settings = Settings(grace_days=5)
    establishments.recover()
    worker.recomputation.planned()

    class Broken:
        """The worker's Establishments but for recomputation, which fails: the reference of
        the worker's Recomputation replaced (compiled with mypyc, an instance's method cannot
        be patched)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(establishments, name)

        def recomputation(self, finess: str, step: int | None) -> Any:
            raise RuntimeError("a bug")

    monkeypatch.setattr(worker.recomputation, "establishments", Broken())
    await stage.context.put(key=F1.encode(), value=REQUEST)
    assert stage.figures() == {}
    health = worker.health()
    assert (health["status"], health["failing_establishments"]) == ("failing", [F1])
    assert health["recomputing"]["left"] == 1
