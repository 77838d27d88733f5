"""Bytes of what the store keeps: facts, join indexes and contributions, as compact JSON.

Arrays rather than objects (a stay is ~400 bytes, not ~900): the store holds one value per
stay, document, recipient, index entry and unit for years. Timestamps keep their offset.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

import orjson

from processors.aggregates import (
    AggregateKey,
    Contribution,
    DischargeDay,
    EventDay,
    PeopleKey,
    RateKey,
    UnitKey,
)
from processors.facts import (
    Deposit,
    DocumentFacts,
    Failure,
    Production,
    RecipientFacts,
    StayFacts,
    StayVersion,
)

# The version of the stored entries, kept in each establishment's meta entry
# (processors.fingerprint). Bump it when the rules change what a unit contributes (a fix in
# processors.rules), or when a kind of entry changes so that units must be derived again: a
# worker then recomputes, from the stored facts, every establishment whose stored version
# differs. Decoding an older entry must keep working (fewer fields: see decode_document).
# 0: stores written before the meta entry (a store older still, before 0568885, also lacks
#    what explains units: failed deposits, non-qualifying MSS Pro messages).
# 1: the meta entry; the recomputation writes every unit entry an older store lacks.
STATE_VERSION = 1


# Datetimes and dates go to orjson as they are: it writes their isoformat(), in C (checked on
# every timestamp of a simulated history, and by tests/processors/test_codec.py). They differ
# only for an offset with seconds, which orjson rounds: the contract's are whole minutes
# (RFC 3339, topics.fields).
def _dumps(data: Any) -> bytes:
    # Exactly their size: orjson ≥ 3.12 keeps ≥ 4 KiB behind each result (ijl/orjson#483).
    # decode().encode() copies ~2.5× faster than bytes(memoryview(...)) (two tight C copies,
    # ASCII's fast path both ways) and gives the same bytes: orjson writes valid UTF-8.
    return orjson.dumps(data).decode().encode()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _required(value: str) -> datetime:
    return datetime.fromisoformat(value)


def encode_stay(stay: StayFacts) -> bytes:
    v = stay.version
    version = None
    if v is not None:
        version = [v.event_id, v.occurred_at, v.patient_id, v.admitted_at, v.discharged_at,
                   v.stay_kind, v.ins_status, v.surgical, v.deceased, v.dmp_opposition,
                   [list(c) for c in v.correspondents]]  # fmt: skip
    messages = stay.citizen_messages
    return _dumps([stay.stay_id, version, stay.cancelled_at, stay.cancel_event_id, messages])


def decode_stay(raw: bytes) -> StayFacts:
    stay_id, v, cancelled_at, cancel_event_id, messages = orjson.loads(raw)
    version = None
    if v is not None:
        version = StayVersion(
            v[0], _required(v[1]), v[2], _required(v[3]), _required(v[4]), v[5], v[6], v[7],
            v[8], v[9], tuple((c[0], c[1]) for c in v[10]),
        )  # fmt: skip
    return StayFacts(
        stay_id, version, _dt(cancelled_at), cancel_event_id,
        {k: _required(t) for k, t in messages.items()},
    )  # fmt: skip


def encode_document(doc: DocumentFacts) -> bytes:
    p, d = doc.production, doc.deposit
    production = (
        None
        if p is None
        else [p.event_id, p.occurred_at, p.type_code, p.patient_id, p.stay_id, p.produced_at]
    )
    deposit = None if d is None else [
        d.event_id, d.occurred_at, d.type_code, d.patient_id, d.stay_id, d.cda_level,
        d.ins_status, d.produced_at, d.deposited_at, d.replaces,
    ]  # fmt: skip
    document: list[Any] = [doc.document_id, production, deposit, doc.deleted_at]
    f = doc.failure
    if f is not None:  # a 5th element since units were explained: older entries have 4
        document.append([f.event_id, f.occurred_at, f.reason])
    return _dumps(document)


def decode_document(raw: bytes) -> DocumentFacts:
    document_id, p, d, deleted_at, *rest = orjson.loads(raw)
    failure = None
    if rest:
        event_id, occurred_at, reason = rest[0]
        failure = Failure(event_id, _required(occurred_at), reason)
    production = None
    if p is not None:
        production = Production(p[0], _required(p[1]), p[2], p[3], p[4], _required(p[5]))
    deposit = None
    if d is not None:
        deposit = Deposit(
            d[0], _required(d[1]), d[2], d[3], d[4], d[5], d[6], _required(d[7]),
            _required(d[8]), d[9],
        )  # fmt: skip
    return DocumentFacts(document_id, production, deposit, _dt(deleted_at), failure)


def encode_recipient(recipient: RecipientFacts) -> bytes:
    entry: list[Any] = [recipient.rpps, recipient.qualifying_messages]
    if recipient.other_messages:  # a 3rd element since units were explained
        entry.append(recipient.other_messages)
    return _dumps(entry)


def decode_recipient(raw: bytes) -> RecipientFacts:
    rpps, days, *rest = orjson.loads(raw)
    others = rest[0] if rest else {}
    return RecipientFacts(
        rpps,
        {k: date.fromisoformat(d) for k, d in days.items()},
        {k: date.fromisoformat(d) for k, d in others.items()},
    )


def encode_meta(version: int, settings: dict[str, Any]) -> bytes:
    return _dumps([version, settings])


def decode_meta(raw: bytes) -> tuple[int, dict[str, Any]]:
    version, settings = orjson.loads(raw)
    return version, settings


def encode_ids(ids: frozenset[str]) -> bytes:
    return _dumps(sorted(ids))


def decode_ids(raw: bytes) -> frozenset[str]:
    return frozenset(orjson.loads(raw))


_KEY_TAGS: Final[dict[type, str]] = {
    RateKey: "r",
    PeopleKey: "p",
    DischargeDay: "d",
    EventDay: "e",
    UnitKey: "u",
}
_KEY_TYPES: Final[dict[str, Any]] = {tag: kind for kind, tag in _KEY_TAGS.items()}


def encode_contribution(contribution: Contribution) -> bytes:
    """[[tag, *key fields, count], ...]: the tag says which kind of key.

    orjson's bytes of that list, put together from each key's text (`_key_text`, or
    `_people_text` for a people key) and its count: every item is `[` + the key's fields +
    `,` + the count + `]`, as orjson writes it (tests/processors/test_codec.py compares
    them)."""
    parts = ["["]  # parts.append, not a bound method kept: compiled, a direct PyList_Append
    texts = _KEY_TEXTS
    for key, value in contribution.items():
        if type(key) is PeopleKey:
            text = _people_text(key)
        else:
            known = texts[type(key)].get(key)
            text = _key_text(key) if known is None else known
        if len(parts) > 1:
            parts.append(",")
        parts.append(text)
        parts.append("1]" if value == 1 else f"{value}]")  # an int: orjson writes str(int)
    parts.append("]")
    return "".join(parts).encode()  # orjson writes UTF-8: the same bytes


# Each key's JSON up to its count, `["r","den","DS1.1","2023-01",`, by kind of key (a RateKey
# and a PeopleKey of equal fields stay apart): the same few months, days and indicators
# are written in every contribution flushed, and orjson per item cost ~3× more. Bounded:
# emptied when full. Not the people keys: one per correspondent and month, their number
# grows with the history (a full 50,000 held ~10 MiB, mostly of keys no unit held any more);
# `_people_text` puts theirs together.
_KEY_TEXTS: Final[dict[type, dict[AggregateKey, str]]] = {
    kind: {} for kind in _KEY_TAGS if kind is not PeopleKey
}
_KEY_TEXTS_MAX: Final = 16_384


def _key_text(key: AggregateKey) -> str:
    texts = _KEY_TEXTS[type(key)]
    if len(texts) >= _KEY_TEXTS_MAX:
        texts.clear()
    item = orjson.dumps([_KEY_TAGS[type(key)], *key]).decode()
    text = texts[key] = item[:-1] + ","  # "]" → "," : the count follows
    return text


# A people key's text up to its RPPS, `["p","named","2023-01",`, by (role, month): a few
# per month.
_PEOPLE_PREFIXES: Final[dict[tuple[str, str], str]] = {}


def _people_text(key: PeopleKey) -> str:
    """`_key_text` of a people key, without keeping it: its (role, month) prefix, then the
    RPPS as orjson writes it (quoted as it is when no character needs escaping, as with
    digits: orjson escapes only `"`, `\\` and controls; other text goes through orjson)."""
    role, month, rpps = key
    prefix = _PEOPLE_PREFIXES.get((role, month))
    if prefix is None:
        if len(_PEOPLE_PREFIXES) >= _KEY_TEXTS_MAX:
            _PEOPLE_PREFIXES.clear()
        prefix = orjson.dumps(["p", role, month]).decode()[:-1] + ","
        _PEOPLE_PREFIXES[(role, month)] = prefix
    if rpps.isascii() and rpps.isprintable() and '"' not in rpps and "\\" not in rpps:
        return f'{prefix}"{rpps}",'
    return prefix + orjson.dumps(rpps).decode() + ","


# Decoded keys by their fields: the same few months, days and indicators come back in every
# contribution read; the aggregates share them too. Bounded: emptied when full. Small: the
# distinct keys grow with the history (a correspondent per month, a deadline per day), and
# a bound of 200,000 held ~80 MiB once full, mostly of keys read once (a miss costs a tuple).
_KEYS: Final[dict[tuple[Any, ...], AggregateKey]] = {}
_KEYS_MAX: Final = 16_384
_new_key: Final = tuple.__new__  # a NamedTuple's own constructor is interpreted Python


# Contributions by their bytes, the last few thousand decoded: many units' bytes are the same
# (a lone document's day, a stay's counts), and an entry the cache evicted comes back
# unchanged (~80 % of the reads with a 500-entry cache). Decoding costs ~1.5k instructions a
# key (its fields are new strings, hashed to find the shared key); a hit, a copy (the caller
# owns its dict). Bounded: emptied when full.
_DECODED: Final[dict[bytes, Contribution]] = {}
_DECODED_MAX: Final = 4096


def decode_contribution(raw: bytes) -> Contribution:
    known = _DECODED.get(raw)
    if known is not None:
        return dict(known)
    contribution = _decode_contribution(raw)
    if len(_DECODED) >= _DECODED_MAX:
        _DECODED.clear()
    _DECODED[raw] = dict(contribution)
    return contribution


def _decode_contribution(raw: bytes) -> Contribution:
    contribution: Contribution = {}
    keys = _KEYS
    for item in orjson.loads(raw):
        fields = tuple(item[:-1])
        key = keys.get(fields)
        if key is None:
            if len(keys) >= _KEYS_MAX:
                keys.clear()
            key = keys[fields] = _new_key(_KEY_TYPES[fields[0]], fields[1:])
        contribution[key] = item[-1]
    return contribution


def encode_moment(moment: datetime) -> bytes:
    return _dumps(moment)


def decode_moment(raw: bytes) -> datetime:
    return datetime.fromisoformat(orjson.loads(raw))


def encode_journal(writes: list[tuple[str, str, bytes | None]]) -> bytes:
    """(kind, id, value bytes or None) of a purge chunk; values are our JSON (UTF-8 text)."""
    return _dumps([[kind, ident, None if v is None else v.decode()] for kind, ident, v in writes])


def decode_journal(raw: bytes) -> list[tuple[str, str, bytes | None]]:
    return [(k, i, None if v is None else v.encode()) for k, i, v in orjson.loads(raw)]
