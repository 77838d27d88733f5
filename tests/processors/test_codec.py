"""The store's bytes: facts and contributions round-trip; entries of the previous format read."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.aggregates import Contribution, DischargeDay, EventDay, PeopleKey, RateKey, UnitKey
from processors.codec import (
    _dumps,
    decode_contribution,
    decode_document,
    decode_recipient,
    encode_contribution,
    encode_document,
    encode_moment,
    encode_recipient,
)
from processors.facts import Deposit, DocumentFacts, Failure, RecipientFacts

AT = datetime.fromisoformat("2023-01-12T11:00:00+01:00")


def test_a_failed_deposit_and_other_messages_round_trip() -> None:
    doc = DocumentFacts("D1", failure=Failure("evt-1", AT, "DMPClosed"))
    assert decode_document(encode_document(doc)) == doc
    recipient = RecipientFacts("R1", {"m1": date(2023, 1, 2)}, {"m2": date(2023, 1, 3)})
    assert decode_recipient(encode_recipient(recipient)) == recipient


def test_entries_of_the_previous_format_still_read() -> None:
    """Before units were explained: a document had 4 fields, a recipient 2."""
    doc = decode_document(b'["D1",null,null,"2023-01-12T11:00:00+01:00"]')
    assert doc == DocumentFacts("D1", deleted_at=AT)
    assert decode_recipient(b'["R1",{"m1":"2023-01-02"}]') == RecipientFacts(
        "R1", {"m1": date(2023, 1, 2)}
    )
    # And an entry without the new fields is written as before.
    assert encode_document(DocumentFacts("D1", deleted_at=AT)).count(b",") == 3


def test_every_key_of_a_contribution_round_trips_apart() -> None:
    contribution: Contribution = {
        RateKey("den", "DS1.1", "2023-01"): 1,
        PeopleKey("other", "2023-01", "R1"): 1,
        DischargeDay("2023-01-12"): 1,
        EventDay("2023-01-12"): 1,  # the same day as the DischargeDay: a key of its own
        UnitKey("DS1.1", "2023-01", "no_document", "2023-02-11"): 1,
    }
    decoded = decode_contribution(encode_contribution(contribution))
    assert decoded == contribution
    assert {type(key) for key in decoded} == {RateKey, PeopleKey, DischargeDay, EventDay, UnitKey}


@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(None)
    ),
    minutes=st.integers(-14 * 60 + 1, 14 * 60 - 1),
)
def test_a_timestamp_is_written_as_its_isoformat(moment: datetime, minutes: int) -> None:
    """The codec hands datetimes to orjson as they are: the same text as isoformat(), for every
    offset the contract accepts (whole minutes, RFC 3339) and any fraction of a second."""
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    deposit = Deposit("e", aware, "11490-0", "P1", "S1", 1, "qualifiee", aware, aware, None)
    raw = encode_document(DocumentFacts("D1", deposit=deposit, deleted_at=aware))
    assert raw.count(f'"{aware.isoformat()}"'.encode()) == 4
    assert decode_document(raw) == DocumentFacts("D1", deposit=deposit, deleted_at=aware)
    assert encode_moment(aware) == f'"{aware.isoformat()}"'.encode()


@given(
    st.recursive(st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(), st.lists, max_leaves=20)
)
def test_the_stored_bytes_are_orjsons_whatever_the_text(data: object) -> None:
    # _dumps copies orjson's result (see its comment): any text, non-ASCII included, must
    # come back as the very same bytes (hypothesis' text() has no lone surrogates).
    assert _dumps(data) == orjson.dumps(data)


_TEXT = st.text(max_size=12)
_KEYS = st.one_of(
    st.builds(RateKey, _TEXT, _TEXT, _TEXT),
    st.builds(PeopleKey, _TEXT, _TEXT, _TEXT),
    st.builds(DischargeDay, _TEXT),
    st.builds(EventDay, _TEXT, _TEXT),
    st.builds(UnitKey, _TEXT, _TEXT, _TEXT, _TEXT),
)


@given(st.dictionaries(_KEYS, st.integers(-(2**63), 2**63 - 1), max_size=12), st.booleans())
def test_a_contribution_is_written_as_orjson_writes_its_list(
    contribution: Contribution, twice: bool
) -> None:
    """encode_contribution puts each key's text (made once, kept) and its count together: the
    bytes orjson gives for the whole list, any text or count, read from the kept texts or not."""
    listed = [[type(key).__name__, *key, value] for key, value in contribution.items()]
    tags = {"RateKey": "r", "PeopleKey": "p", "DischargeDay": "d", "EventDay": "e", "UnitKey": "u"}
    expected = orjson.dumps([[tags[item[0]], *item[1:]] for item in listed])
    assert encode_contribution(contribution) == expected
    if twice:  # the keys' texts kept from the first call
        assert encode_contribution(contribution) == expected
    assert decode_contribution(expected) == contribution


def test_a_contribution_read_again_is_the_same_and_the_callers_own() -> None:
    """decode_contribution keeps the last contributions decoded by their bytes: a second read
    gives an equal dict in the same order, which its caller may change without changing the
    next read."""
    contribution: Contribution = {
        EventDay("2023-01-12"): 1,
        RateKey("den", "DS1.1", "2023-01"): 1,
        UnitKey("DS1.1", "2023-01", "no_document", "2023-02-11"): 1,
    }
    raw = encode_contribution(contribution)
    first = decode_contribution(raw)
    first[RateKey("num", "DS1.1", "2023-01")] = 1  # the caller's own dict
    del first[EventDay("2023-01-12")]
    again = decode_contribution(bytes(raw))  # equal bytes, another object
    assert again == contribution
    assert list(again) == list(contribution)
    for n in range(5000):  # past the bound: emptied, decoded anew
        decode_contribution(encode_contribution({EventDay(f"d{n}"): n}))
    assert decode_contribution(raw) == contribution


@pytest.mark.parametrize(
    "rpps", ["10123456789", 'a"b', "a\\b", "a\x1fb", "a\x7fb", "é", "\u2028", "", " /<>"]
)
def test_a_people_keys_text_is_orjsons_whatever_its_rpps(rpps: str) -> None:
    """People keys' texts are put together, not kept (codec._people_text): RPPS quoted as
    they are when orjson would escape nothing, through orjson otherwise."""
    contribution: Contribution = {PeopleKey("named", "2023-01", rpps): 1}
    assert encode_contribution(contribution) == orjson.dumps([["p", "named", "2023-01", rpps, 1]])
