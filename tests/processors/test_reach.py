"""processors.reach, and the pruned apply it drives against the full recomputation (the oracle)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.collection import Establishments
from processors.facts import Deposit, DocumentFacts, Production, StayFacts, StayVersion
from processors.reach import NOWHERE, document_reach, reaches_later_stay, stay_reach
from processors.settings import Settings
from processors.state import UNIT_KINDS, parse_store_key
from processors.store import MemoryStore
from tests.builders import (
    F1,
    cancelled,
    deposit_failed,
    deposited,
    discharged,
    mss_sent,
    parse,
    produced,
)
from tests.processors.test_properties import DOCS, PATIENTS, REGISTRY, TYPES, event, ts

DISCHARGE_LETTER, BIOLOGY = "11490-0", "11502-2"


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2023, 1, day, hour, tzinfo=UTC)


def version(patient: str = "P1", admitted: int = 10, discharged: int = 12) -> StayVersion:
    return StayVersion(
        "e", at(discharged), patient, at(admitted), at(discharged), "hospitalisation_complete",
        "qualifiee", False, False, False, (),
    )  # fmt: skip


def deposit(
    type_code: str, produced_day: int, deposited_day: int, stay: str | None = "S1"
) -> Deposit:
    return Deposit(
        "e", at(deposited_day), type_code, "P1", stay, 1, "qualifiee", at(produced_day),
        at(deposited_day), None,
    )  # fmt: skip


def test_a_stay_document_reaches_its_stay_and_the_history_window_of_its_deposit() -> None:
    doc = DocumentFacts("D1", deposit=deposit(DISCHARGE_LETTER, 5, 20))
    reach = document_reach(doc)
    assert reach.stay_id == "S1"
    assert reach.reaches_by_history(version(admitted=10))  # produced before, deposited after
    assert not reach.reaches_by_history(version(admitted=3))  # admitted before its production
    assert not reach.reaches_by_history(version(admitted=21))  # admitted after its deposit
    assert not reach.reaches_by_history(version(patient="P2", admitted=10))


def test_a_report_reaches_no_stay_as_a_document_of_it_only_as_history() -> None:
    production = Production("e", at(5), BIOLOGY, "P1", "S1", at(5))
    assert document_reach(DocumentFacts("D1", production=production)) == NOWHERE
    reach = document_reach(DocumentFacts("D1", deposit=deposit(BIOLOGY, 5, 20)))
    assert reach.stay_id is None and reach.history is not None


def test_an_undeposited_stay_document_reaches_its_stay_only() -> None:
    production = Production("e", at(5), DISCHARGE_LETTER, "P1", "S1", at(5))
    reach = document_reach(DocumentFacts("D1", production=production))
    assert reach.stay_id == "S1" and reach.history is None
    assert document_reach(None) == NOWHERE


def test_a_stay_reaches_the_stays_admitted_within_the_lookback_after_it() -> None:
    earlier = version(admitted=1, discharged=5)
    assert reaches_later_stay(earlier, version(admitted=10, discharged=12), 30)
    assert not reaches_later_stay(earlier, version(admitted=3, discharged=12), 30)
    assert not reaches_later_stay(earlier, version(admitted=10, discharged=12), 4)
    assert not reaches_later_stay(earlier, version(patient="P2", admitted=10), 30)


def test_a_cancelled_stay_reaches_no_other() -> None:
    stay = StayFacts("S1", version=version())
    assert stay_reach(stay) == stay.version
    stay.cancelled_at = at(20)
    assert stay_reach(stay) is None
    assert stay_reach(None) is None and stay_reach(StayFacts("S2")) is None


# --- the pruned apply vs the full recomputation, after every event ---------------------------

STAYS = ["S0", "S1", "S2"]
FEW_DOCS = DOCS[:3]


@st.composite
def production(draw: st.DrawFn) -> dict[str, Any]:
    """A document.produced of F1 on the few stays and documents, for one of two patients."""
    day = draw(st.sampled_from(["2022-12-20", "2023-01-05", "2023-01-31", "2023-03-31"]))
    return produced(
        draw(st.sampled_from(FEW_DOCS)), draw(st.sampled_from(TYPES)),
        produced_at=ts(day, draw(st.integers(0, 23))),
        patient=draw(st.sampled_from(PATIENTS[:2])),
        stay_id=draw(st.sampled_from([None, *STAYS])),
        finess=F1,
    )  # fmt: skip


@st.composite
def any_event(draw: st.DrawFn) -> dict[str, Any]:
    """The property tests' events on fewer stays (more neighbours), plus productions and
    deposit failures."""
    kind = draw(st.integers(0, 7))
    if kind == 6:
        return draw(production())
    if kind == 7:
        return deposit_failed(draw(st.sampled_from(FEW_DOCS)), finess=F1)
    found: dict[str, Any] = draw(event(stays=STAYS, docs=FEW_DOCS))
    found["finess"] = F1  # one establishment, two patients: every event has neighbours
    if "patient_id" in found:
        found["patient_id"] = draw(st.sampled_from(PATIENTS[:2]))
    return found


def assert_same_as_a_full_recomputation(
    store: MemoryStore, pruned: Establishments, s: Settings
) -> None:
    """Every entry (facts, indexes, units) and every aggregate key as `recompute()` gives;
    the units byte for byte, as it writes them afresh."""
    entries = dict(store.data)
    copy = MemoryStore()
    copy.data = {k: v for k, v in entries.items() if parse_store_key(k)[1] not in UNIT_KINDS}
    oracle = Establishments(s, copy, 0)
    oracle.recover()
    for finess in {parse_store_key(k)[0] for k in entries}:
        oracle.get(finess).recompute()
    oracle.flush()
    assert copy.data == entries
    for est in oracle.all():
        assert pruned.get(est.finess).aggregates.totals == est.aggregates.totals


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(any_event(), min_size=5, max_size=40),
    data=st.data(),
    lookback=st.sampled_from([1, 30, 365]),
    grace=st.sampled_from([0, 30]),
)
def test_the_pruned_apply_equals_a_full_recomputation_after_every_event(
    events: list[dict[str, Any]], data: st.DataObject, lookback: int, grace: int
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=8))
    feed = data.draw(st.permutations(events + duplicates))
    s = Settings(lookback_days=lookback, grace_days=grace)
    store = MemoryStore()
    pruned = Establishments(s, store, 0)
    for obj in REGISTRY:
        pruned.apply(parse(obj))
    for obj in feed:
        pruned.apply(parse(obj))
        pruned.flush()
        assert_same_as_a_full_recomputation(store, pruned, s)


# Each scenario reaches a unit only through the facts before the change, or through a
# document the change replaces: the cases a random feed finds least often.


def feed_and_compare(objects: list[dict[str, Any]]) -> None:
    s = Settings()
    store = MemoryStore()
    pruned = Establishments(s, store, 0)
    pruned.apply(parse(REGISTRY[0]))
    for obj in objects:
        assert pruned.apply(parse(obj))
        pruned.flush()
        assert_same_as_a_full_recomputation(store, pruned, s)


def test_a_document_moved_to_another_stay_leaves_the_first() -> None:
    feed_and_compare([
        discharged("S1", patient="P1"), discharged("S2", patient="P1"),
        deposited("D1", DISCHARGE_LETTER, stay_id="S1", deposited_at=ts("2023-01-12", 11)),
        deposited("D1", DISCHARGE_LETTER, stay_id="S2", deposited_at=ts("2023-01-13", 11)),
    ])  # fmt: skip


def test_a_cancelled_earlier_stay_no_longer_makes_a_returning_patient() -> None:
    feed_and_compare([
        discharged("S1", patient="P1", admitted=ts("2023-01-01", 8), discharged=ts("2023-01-05", 8)),
        discharged("S2", patient="P1", admitted=ts("2023-01-10", 8), discharged=ts("2023-01-12", 8)),
        cancelled("S1", occurred=ts("2023-01-20", 8)),
    ])  # fmt: skip


def test_a_replacement_elsewhere_changes_the_stay_of_the_replaced_document() -> None:
    feed_and_compare([
        discharged("S1", patient="P1"),
        deposited("D1", DISCHARGE_LETTER, stay_id="S1", deposited_at=ts("2023-01-12", 11)),
        deposited("D2", BIOLOGY, stay_id=None, deposited_at=ts("2023-01-13", 11), replaces="D1"),
    ])  # fmt: skip


def test_a_history_deposit_redated_leaves_the_stays_of_its_old_window() -> None:
    feed_and_compare([
        discharged("S1", patient="P1", admitted=ts("2023-01-01", 8), discharged=ts("2023-01-05", 8)),
        discharged("S2", patient="P1", admitted=ts("2023-01-10", 8), discharged=ts("2023-01-12", 8)),
        deposited("D1", BIOLOGY, produced=ts("2023-01-06", 8), deposited_at=ts("2023-01-11", 8)),
        deposited(
            "D1", BIOLOGY, produced=ts("2023-01-06", 8), deposited_at=ts("2023-01-08", 8),
            occurred_at=ts("2023-01-20", 8),
        ),
    ])  # fmt: skip


def test_a_stay_reached_by_one_of_its_documents_keeps_its_other_keys_in_their_order() -> None:
    """Only the reached indicator is derived again (rules.stay_contribution_update): the
    stored keys it keeps and the new ones must be what the full path writes, byte for byte."""
    doctor = [{"rpps": "R1", "mss_address": "R1@x.mssante.fr"}]
    feed_and_compare([
        discharged("S1", patient="P1", surgical=True, correspondents=doctor),
        discharged("S0", patient="P1", admitted=ts("2022-12-20", 8),
                   discharged=ts("2022-12-21", 8), correspondents=doctor),
        deposited("D1", "57833-6", stay_id="S1", deposited_at=ts("2023-01-12", 11)),
        deposited("D2", DISCHARGE_LETTER, stay_id="S1", deposited_at=ts("2023-01-12", 12)),
        deposited("D3", "34874-8", stay_id="S1", deposited_at=ts("2023-01-12", 13)),
        deposited("D4", BIOLOGY, stay_id=None, produced=ts("2023-01-06", 8),
                  deposited_at=ts("2023-01-11", 8)),
        deposited("D2", DISCHARGE_LETTER, stay_id="S1", deposited_at=ts("2023-01-12", 12),
                  occurred_at=ts("2023-01-20", 8), cda_level=3),
    ])  # fmt: skip


def test_a_citizen_message_derives_again_only_the_stay_s_ds42_and_latest_day() -> None:
    doctor = [{"rpps": "R1", "mss_address": "R1@x.mssante.fr"}]
    feed_and_compare([
        discharged("S1", patient="P1", correspondents=doctor),
        deposited("D1", DISCHARGE_LETTER, stay_id="S1", deposited_at=ts("2023-01-12", 11)),
        mss_sent("citoyenne", "p@patient.mssante.fr", stay_id="S1", sent=ts("2023-02-20", 8)),
        mss_sent("citoyenne", "p@patient.mssante.fr", stay_id="S1", sent=ts("2023-01-13", 8)),
        mss_sent("citoyenne", "p@patient.mssante.fr", stay_id="S2", sent=ts("2023-01-13", 8)),
        discharged("S2", patient="P2", ins_status="validee", correspondents=doctor),
        mss_sent("citoyenne", "p@patient.mssante.fr", stay_id="S2", sent=ts("2023-01-14", 8)),
    ])  # fmt: skip


# --- the fast paths of a document's change (Establishment._change_document) -------------------


@st.composite
def single_version_event(draw: st.DrawFn) -> dict[str, Any]:
    """`any_event`, its deposits mostly replacing none: the usual case, which derives the
    document's report unit from the facts in hand (its chain is itself alone when none
    replaces it) and, when neither its old nor its new state is a history deposit, reaches
    only its stay. Now and then a replacement, so that a document replaced by one that came
    first (its chain is not itself alone) is found too. Half of them productions: a
    production is no history deposit, so a document produced again for another stay reaches
    its old and its new stay by the fast path."""
    if draw(st.booleans()):
        return draw(production())
    found: dict[str, Any] = draw(any_event())
    if "replaces" in found:
        found["replaces"] = draw(st.sampled_from([None, None, None, None, *FEW_DOCS]))
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(single_version_event(), min_size=5, max_size=30),
    data=st.data(),
    grace=st.sampled_from([0, 30]),
)
def test_a_document_s_fast_paths_equal_a_full_recomputation_after_every_event(
    events: list[dict[str, Any]], data: st.DataObject, grace: int
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=5))
    feed = data.draw(st.permutations(events + duplicates))
    s = Settings(grace_days=grace)
    store = MemoryStore()
    pruned = Establishments(s, store, 0)
    pruned.apply(parse(REGISTRY[0]))
    for obj in feed:
        pruned.apply(parse(obj))
        pruned.flush()
        assert_same_as_a_full_recomputation(store, pruned, s)


def test_a_production_moved_to_another_stay_leaves_the_first() -> None:
    """No deposit, so no history deposit: the fast path reaches both stays."""
    feed_and_compare([
        discharged("S1", patient="P1"), discharged("S2", patient="P1"),
        produced("D1", DISCHARGE_LETTER, produced_at=ts("2023-01-12", 9), stay_id="S1"),
        produced("D1", DISCHARGE_LETTER, produced_at=ts("2023-01-12", 10), stay_id="S2"),
    ])  # fmt: skip


def test_a_document_replaced_before_it_came_is_one_unit_with_its_replacement() -> None:
    """The replacement first: the replaced document replaces none, yet its chain is two."""
    feed_and_compare([
        discharged("S1", patient="P1"),
        deposited("D2", BIOLOGY, stay_id="S1", deposited_at=ts("2023-01-13", 11), replaces="D1"),
        produced("D1", BIOLOGY, produced_at=ts("2023-01-05", 8), stay_id="S1", finess=F1),
        deposited("D1", BIOLOGY, stay_id="S1", deposited_at=ts("2023-01-12", 11)),
    ])  # fmt: skip
