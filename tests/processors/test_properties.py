"""Properties of the core on generated data: order, duplicates and restarts never change figures."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.collection import Establishments
from processors.report import compute_report
from processors.settings import Settings
from processors.store import MemoryStore
from tests.builders import (
    F1,
    F2,
    cancelled,
    deleted,
    deposited,
    discharged,
    establishment,
    mss_sent,
    parse,
)

STAYS = [f"S{i}" for i in range(6)]
PATIENTS = ["P0", "P1", "P2"]
DOCS = [f"D{i}" for i in range(8)]
RPPS = ["R0", "R1", "R2"]
TYPES = ["11490-0", "57833-6", "34874-8", "11502-2", "18748-4", "60591-5"]
DAYS = ["2022-12-20", "2023-01-05", "2023-01-31", "2023-02-15", "2023-03-31", "2023-04-02"]
KINDS = ["hospitalisation_complete", "had", "urgence"]
INS = ["qualifiee", "qualifiee", "validee"]


def ts(day: str, hour: int) -> str:
    return f"{day}T{hour:02d}:30:00+01:00"


@st.composite
def event(
    draw: st.DrawFn, days: list[str] = DAYS, stays: list[str] = STAYS, docs: list[str] = DOCS
) -> dict[str, Any]:
    """Any event of F1 or F2 dated on `days`, naming those stays and documents."""
    finess = draw(st.sampled_from([F1, F2]))
    kind = draw(st.integers(0, 5))
    day, hour = draw(st.sampled_from(days)), draw(st.integers(0, 23))
    if kind == 0:
        admitted = draw(st.sampled_from([d for d in days if d <= day]))
        return discharged(
            draw(st.sampled_from(stays)),
            finess=finess,
            patient=draw(st.sampled_from(PATIENTS)),
            admitted=ts(admitted, 0),
            discharged=ts(day, hour),
            occurred=ts(day, draw(st.integers(hour, 23))),
            stay_kind=draw(st.sampled_from(KINDS)),
            ins_status=draw(st.sampled_from(INS)),
            surgical=draw(st.booleans()),
            correspondents=[
                {"rpps": r, "mss_address": draw(st.sampled_from([None, f"{r}@x.mssante.fr"]))}
                for r in draw(st.lists(st.sampled_from(RPPS), max_size=2, unique=True))
            ],
        )
    if kind == 1:
        return cancelled(draw(st.sampled_from(stays)), occurred=ts(day, hour), finess=finess)
    if kind == 2:
        produced_day = draw(st.sampled_from([d for d in days if d <= day]))
        return deposited(
            draw(st.sampled_from(docs)),
            draw(st.sampled_from(TYPES)),
            finess=finess,
            stay_id=draw(st.sampled_from([None, *stays])),
            patient=draw(st.sampled_from(PATIENTS)),
            produced=ts(produced_day, 0),
            deposited_at=ts(day, hour),
            cda_level=draw(st.sampled_from([1, 3])),
            ins_status=draw(st.sampled_from(INS)),
            replaces=draw(st.sampled_from([None, None, *docs])),
        )
    if kind == 3:
        return deleted(draw(st.sampled_from(docs)), occurred=ts(day, hour), finess=finess)
    if kind == 4:
        return mss_sent(
            "citoyenne", "p@patient.mssante.fr", finess=finess,
            stay_id=draw(st.sampled_from(stays)), sent=ts(day, hour),
        )  # fmt: skip
    return mss_sent(
        "pro", draw(st.sampled_from(RPPS)), finess=finess, sent=ts(day, hour),
        attachments=[{"document_id": "x", "type_code": "11490-0",
                      "cda_level": draw(st.sampled_from([None, 1, 3])),
                      "ins_status": draw(st.sampled_from(INS))}],
    )  # fmt: skip


REGISTRY = [establishment(F1, window="F2"), establishment(F2, window="F3", has_lab=False)]
event_sets = st.lists(event(), min_size=1, max_size=40)
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rows_json(
    objects: list[dict[str, Any]], settings: Settings | None = None
) -> list[dict[str, Any]]:
    return [r.as_json() for r in compute_report([parse(o) for o in objects], settings)]


@SLOW
@given(events=event_sets, data=st.data())
def test_any_order_with_duplicates_gives_the_same_report(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    expected = rows_json(REGISTRY + events)
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=10))
    shuffled = data.draw(st.permutations(REGISTRY + events + duplicates))
    assert rows_json(shuffled) == expected


@SLOW
@given(events=event_sets, grace=st.sampled_from([0, 30]))
def test_incremental_aggregates_equal_a_full_recomputation(
    events: list[dict[str, Any]], grace: int
) -> None:
    collection = Establishments(Settings(grace_days=grace))
    for obj in REGISTRY + events:
        collection.apply(parse(obj))
    for est in collection.all():
        incremental = est.rows()
        totals = dict(est.aggregates.totals)
        est.recompute()
        assert est.aggregates.totals == totals
        assert est.rows() == incremental


@SLOW
@given(events=event_sets, cut=st.integers(0, 40), cache=st.sampled_from([None, 0, 5]))
def test_restart_from_the_store_gives_the_same_figures(
    events: list[dict[str, Any]], cut: int, cache: int | None
) -> None:
    """A worker restart: a new collection over the same store (nothing cached, aggregates
    read back from the stored contributions), then the rest replayed, with the events before
    the cut replayed again (at-least-once). A small cache changes nothing either."""
    records = [parse(o) for o in events]
    expected = _run(records, MemoryStore(), None).rows()
    store = MemoryStore()
    _run(records[:cut], store, cache).flush()
    restarted = Establishments(Settings(), store, cache)
    restarted.recover()
    for obj in REGISTRY:
        restarted.apply(parse(obj))
    for record in records:  # replay everything: the events before the cut count once only
        restarted.apply(record)
        restarted.flush()
    assert restarted.rows() == expected


def _run(records: list[Any], store: MemoryStore, cache: int | None) -> Establishments:
    collection = Establishments(Settings(), store, cache)
    for obj in REGISTRY:
        collection.apply(parse(obj))
    for record in records:
        collection.apply(record)
        if cache is not None:
            collection.flush()
    return collection


@SLOW
@given(events=event_sets, cuts=st.tuples(st.integers(0, 40), st.integers(0, 40)), data=st.data())
def test_a_replay_repairs_a_store_that_got_only_part_of_a_bundle(
    events: list[dict[str, Any]], cuts: tuple[int, int], data: st.DataObject
) -> None:
    """A crash mid-flush: the changelog holds every write up to a bundle, then only some of
    the bundle's writes (facts without their indexes or contributions, or the reverse). The
    new owner recovers that store and replays the uncommitted bundle, then the rest."""
    records = [parse(o) for o in events]
    start, end = sorted(cuts)
    expected = _run(records, MemoryStore(), None).rows()
    store = MemoryStore()
    collection = _run(records[:start], store, 0)
    collection.flush()
    before = dict(store.data)
    for record in records[start:end]:  # the bundle whose writes are partly lost
        collection.apply(record)
    collection.flush()
    changed = sorted(k for k in set(before) | set(store.data) if before.get(k) != store.data.get(k))
    kept = [key for key in changed if data.draw(st.booleans())]
    partial = MemoryStore()
    partial.data = dict(before)
    for key in kept:
        if key in store.data:
            partial.data[key] = store.data[key]
        else:
            partial.data.pop(key, None)
    recovered = Establishments(Settings(), partial, 0)
    recovered.recover()
    for obj in REGISTRY:
        recovered.apply(parse(obj))
    for record in records[start:]:  # the uncommitted bundle again, then the rest
        recovered.apply(record)
        recovered.flush()
    assert recovered.rows() == expected


def test_a_replay_repairs_facts_stored_without_their_contributions() -> None:
    """The simplest such crash: the stay and its letter reached the changelog, their
    contributions did not. Without the repair, the stay is not counted at all."""
    events = [parse(o) for o in (discharged("S1"), deposited("D1", "11490-0", stay_id="S1"))]
    store = MemoryStore()
    crashed = _run(events, store, 0)
    crashed.flush()
    partial = MemoryStore()
    partial.data = {k: v for k, v in store.data.items() if b"|u" not in k}
    recovered = Establishments(Settings(), partial, 0)
    recovered.recover()
    for obj in REGISTRY:
        recovered.apply(parse(obj))
    for record in events:
        recovered.apply(record)
    assert recovered.rows() == _run(events, MemoryStore(), None).rows()
    assert {(r.indicator, r.period): r.numerator for r in recovered.rows()}[("DS1.1", "F2")] == 1
