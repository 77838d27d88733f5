"""The simulator: deterministic, contract-true, messy in every way the processor must survive."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar

import pytest

from processors.calendar import load_calendar
from processors.catalogue import DISCHARGE_LETTER
from processors.periods import PARIS
from simulator import Messiness, SimulatedMessage, SimulationConfig, generate
from simulator.message import DUPLICATE
from topics.names import ESTABLISHMENTS, TOPIC_OF_TYPE
from topics.records import (
    DocumentDeleted,
    DocumentDeposited,
    DocumentDepositFailed,
    EstablishmentRecord,
    Event,
    MssSent,
    Record,
    StayDischargeCancelled,
    StayDischarged,
)
from topics.validation import InvalidRecord, parse_record

E = TypeVar("E", bound=Event)

CONFIG = SimulationConfig(establishments=3, stays_per_day=12, days=25, seed=11)


@pytest.fixture(scope="module")
def messages() -> list[SimulatedMessage]:
    return list(generate(CONFIG))


@pytest.fixture(scope="module")
def records(messages: list[SimulatedMessage]) -> list[Record]:
    """The valid messages as records, in emission order."""
    return [parse_record(m.value) for m in messages if m.valid]


def events_of(records: list[Record], cls: type[E]) -> list[E]:
    return [r for r in records if isinstance(r, cls)]


def test_the_same_seed_gives_the_same_messages(messages: list[SimulatedMessage]) -> None:
    assert list(generate(CONFIG)) == messages


def test_another_seed_gives_other_messages(messages: list[SimulatedMessage]) -> None:
    other = SimulationConfig(establishments=3, stays_per_day=12, days=25, seed=12)
    assert list(itertools.islice(generate(other), 200)) != messages[:200]


def test_valid_messages_pass_the_contract_and_invalid_ones_fail(
    messages: list[SimulatedMessage],
) -> None:
    for message in messages:
        if message.valid:
            record = parse_record(message.value)
            assert message.topic == TOPIC_OF_TYPE[record.type]
            assert message.key == record.finess.encode()
        else:
            with pytest.raises(InvalidRecord):
                parse_record(message.value)
        assert b"\n" not in message.value  # one message, one NDJSON line


def test_every_kind_of_invalid_message_is_produced(messages: list[SimulatedMessage]) -> None:
    codes: Counter[str] = Counter()
    for message in messages:
        if not message.valid:
            with pytest.raises(InvalidRecord) as caught:
                parse_record(message.value)
            codes[caught.value.code] += 1
    assert set(codes) == {
        "invalid_json",
        "unknown_type",
        "missing_field",
        "invalid_timestamp",  # naive timestamps
        "invalid_finess",
        "inconsistent_dates",  # discharge before admission
    }


def test_the_registry_comes_first(messages: list[SimulatedMessage]) -> None:
    head = [parse_record(m.value) for m in messages[: CONFIG.establishments]]
    assert all(isinstance(r, EstablishmentRecord) for r in head)
    assert all(m.topic == ESTABLISHMENTS for m in messages[: CONFIG.establishments])
    assert all(m.topic != ESTABLISHMENTS for m in messages[CONFIG.establishments :])
    registry = [r for r in head if isinstance(r, EstablishmentRecord)]
    assert len({r.finess for r in registry}) == CONFIG.establishments
    assert {r.window for r in registry} == {"F2", "F3", "F4"}  # the default spread
    assert {r.has_lab for r in registry} == {True, False}


def test_fractions_of_invalid_and_duplicate_messages() -> None:
    config = SimulationConfig(
        establishments=2,
        stays_per_day=30,
        days=20,
        seed=5,
        messiness=Messiness(invalid_fraction=0.05, duplicate_fraction=0.1),
    )
    labels = Counter(m.label for m in generate(config))
    total = sum(labels.values())
    invalid = sum(n for label, n in labels.items() if label.startswith("invalid:"))
    assert invalid / total == pytest.approx(0.05, abs=0.01)
    assert labels[DUPLICATE] / (total - invalid) == pytest.approx(0.1, abs=0.015)


def test_no_mess_when_asked_for_none() -> None:
    config = SimulationConfig(
        establishments=1,
        days=5,
        messiness=Messiness(invalid_fraction=0, duplicate_fraction=0),
    )
    labels = Counter(m.label for m in generate(config))
    assert all(m.valid for m in generate(config))
    assert labels[DUPLICATE] == 0


def test_duplicates_resend_the_same_event(messages: list[SimulatedMessage]) -> None:
    seen: dict[str, bytes] = {}
    duplicates = 0
    for message in messages:
        if not message.valid or message.topic == ESTABLISHMENTS:
            continue
        record = parse_record(message.value)
        assert isinstance(record, Event)
        if record.event_id in seen:
            assert seen[record.event_id] == message.value
            duplicates += 1
        seen[record.event_id] = message.value
    assert duplicates == sum(m.label == DUPLICATE for m in messages) > 0


def test_stays_are_corrected_cancelled_and_discharged_again(records: list[Record]) -> None:
    versions: defaultdict[tuple[str, str], list[StayDischarged]] = defaultdict(list)
    unique = {e.event_id: e for e in events_of(records, StayDischarged)}  # without duplicates
    for event in unique.values():
        versions[(event.finess, event.stay_id)].append(event)
    corrected = [
        v
        for v in versions.values()
        if len({(e.discharged_at, e.ins_status, e.correspondents) for e in v}) > 1
    ]
    assert corrected, "no stay.discharged correcting an earlier one"
    # A correction is told apart by a later occurred_at (rule 3).
    assert all(len({e.occurred_at for e in v}) == len(v) for v in corrected)
    cancellations = events_of(records, StayDischargeCancelled)
    assert cancellations
    restored = [
        c
        for c in cancellations
        if any(e.occurred_at > c.occurred_at for e in versions[(c.finess, c.stay_id)])
    ]
    assert restored, "no stay discharged again after its cancellation"


def test_documents_are_replaced_deleted_refused_and_late(records: list[Record]) -> None:
    deposits = events_of(records, DocumentDeposited)
    deposited_ids = {d.document_id for d in deposits}
    assert any(d.replaces in deposited_ids for d in deposits)
    assert any(e.document_id in deposited_ids for e in events_of(records, DocumentDeleted))
    failed = {e.document_id for e in events_of(records, DocumentDepositFailed)}
    assert failed and failed & deposited_ids, "no refused deposit retried with success"
    assert failed - deposited_ids, "no refused deposit left as it is"

    stays = {(e.finess, e.stay_id): e for e in events_of(records, StayDischarged)}
    delays = [
        d.deposited_at - stays[(d.finess, d.stay_id)].discharged_at
        for d in deposits
        if d.stay_id is not None and (d.finess, d.stay_id) in stays
    ]
    assert any(timedelta(days=14) < delay <= timedelta(days=30) for delay in delays)
    assert any(delay > timedelta(days=30) for delay in delays)  # beyond the default grace
    assert {d.cda_level for d in deposits} == {1, 3}
    assert {d.ins_status for d in deposits} > {"qualifiee"}


def test_some_letters_arrive_before_their_discharge_event(records: list[Record]) -> None:
    discharged: set[tuple[str, str]] = set()
    early = 0
    for record in records:
        if isinstance(record, StayDischarged):
            discharged.add((record.finess, record.stay_id))
        elif (
            isinstance(record, DocumentDeposited)
            and record.type_code == DISCHARGE_LETTER
            and record.stay_id is not None
            and (record.finess, record.stay_id) not in discharged
        ):
            early += 1
    assert early > 0


def test_patients_return_and_identities_vary(records: list[Record]) -> None:
    stays = events_of(records, StayDischarged)
    latest = {(s.finess, s.stay_id): s for s in stays}.values()
    per_patient = Counter((s.finess, s.patient_id) for s in latest)
    assert max(per_patient.values()) >= 2
    assert {s.ins_status for s in stays} == {"provisoire", "recuperee", "validee", "qualifiee"}
    assert any(s.surgical for s in stays)
    channels = {e.channel for e in events_of(records, MssSent)}
    assert channels == {"pro", "citoyenne"}


def test_messages_are_roughly_chronological(
    messages: list[SimulatedMessage], records: list[Record]
) -> None:
    """Each establishment's clock starts at its window; apart from re-sent duplicates, an
    event never follows one more than 2 × reorder_window places after it that is earlier."""
    calendar = load_calendar()
    origins = {
        r.finess: datetime.combine(
            calendar.window_for(r.window, r.postponed).start, time(), PARIS
        ).astimezone(UTC)
        for r in records
        if isinstance(r, EstablishmentRecord)
    }
    offsets = [
        (r.occurred_at - origins[r.finess]).total_seconds()
        for m, r in zip((m for m in messages if m.valid), records, strict=True)
        if isinstance(r, Event) and m.label != DUPLICATE
    ]
    reach = 2 * CONFIG.messiness.reorder_window
    latest = float("-inf")
    for index in range(reach + 1, len(offsets)):
        latest = max(latest, offsets[index - reach - 1])
        assert latest <= offsets[index]
    assert offsets != sorted(offsets)  # but shuffled locally


def test_an_endless_stream_can_be_cut() -> None:
    config = SimulationConfig(establishments=2, stays_per_day=5, days=None, seed=1)
    head = list(itertools.islice(generate(config), 3000))
    assert len(head) == 3000
    assert all(m.valid == _parses(m.value) for m in head)


def _parses(value: bytes) -> bool:
    try:
        parse_record(value)
    except InvalidRecord:
        return False
    return True


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"windows": ("F5",)}, "unknown window"),
        ({"establishments": 0}, "at least 1"),
        ({"messiness": Messiness(invalid_fraction=1.0)}, "invalid fraction"),
        ({"stays_per_day": -1}, "stays per day"),
    ],
)
def test_bad_settings_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**fields)  # type: ignore[arg-type]
