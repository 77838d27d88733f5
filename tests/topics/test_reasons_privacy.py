"""Reasons go to logs and dead-letter headers: they never quote patient data.

A wrong value is described by JSON type and size; only closed vocabularies (a short string)
and timestamps (a short date-like string, the typo a person must see) are quoted.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests import builders
from topics.display import Display
from topics.errors import InvalidRecord
from topics.fields import ListOf, field_specs
from topics.records import RECORD_TYPES, Attachment, Correspondent
from topics.validation import json_error_reason, parse_record

INS = "185077512345678"
ADDRESS = "jean.dupont@patient.mssante.fr"
PATIENT = {"ins": INS, "nom": "DUPONT"}

# Closed vocabularies and timestamps: the only fields whose wrong value a reason may quote.
ENUM_LIKE = {
    "type", "stay_kind", "ins_status", "channel", "window", "region", "type_code",
    "cda_level", "reason",
    "surgical", "deceased", "dmp_opposition", "postponed", "has_lab", "has_imaging",
    "cme_presentation",
}  # fmt: skip
TIMESTAMPS = {
    "occurred_at",
    "admitted_at",
    "discharged_at",
    "produced_at",
    "deposited_at",
    "sent_at",
}
IDENTIFYING = {
    "patient_id", "stay_id", "document_id", "message_id", "recipient", "mss_address", "rpps",
    "event_id", "name", "replaces",
}  # fmt: skip

BASES: list[dict[str, Any]] = [
    builders.discharged("S1", correspondents=[{"rpps": "10000000001", "mss_address": "dr@x.mssante.fr"}]),
    builders.cancelled("S1", "2023-01-13T10:00:00+01:00"),
    builders.produced("D1", "11502-2", stay_id="S1"),
    builders.deposited("D1", "11502-2", stay_id="S1", replaces="D0"),
    builders.deposit_failed("D1"),
    builders.deleted("D1"),
    builders.mss_sent("pro", "dr@x.mssante.fr", stay_id="S1", attachments=[
        {"document_id": "D1", "type_code": "11502-2", "ins_status": "qualifiee", "cda_level": 1}]),
    builders.establishment(),
]  # fmt: skip


def _paths() -> Iterator[tuple[int, tuple[str | int, ...]]]:
    """(base index, path) of every field of every record type, nested ones included."""
    for index, base in enumerate(BASES):
        for spec in field_specs(RECORD_TYPES[base["type"]]):
            yield index, (spec.name,)
            if isinstance(spec.kind, ListOf):
                for item in field_specs(spec.kind.item):
                    yield index, (spec.name, 0, item.name)


PATHS = list(_paths())


def _mutated(index: int, path: tuple[str | int, ...], value: Any) -> bytes:
    obj = copy.deepcopy(BASES[index])
    target: Any = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return orjson.dumps(obj)


def _reason(raw: bytes) -> str | None:
    try:
        parse_record(raw)
    except InvalidRecord as exc:
        return exc.reason
    return None


# The fixed text of the contract's reasons (field names, vocabularies, examples): an
# arbitrary injected string that happens to be a part of it is no leak.
_PROBES = [None, {}, [], "", " ", 0, 12, 1.5, True, "x", "xy", "x" * 300, "2023-01-12T10:00",
           ["x"], ["x", "y"], {"k": 1}, {"k": 1, "l": 2}]  # fmt: skip
CONTRACT_TEXT = " ".join(
    reason
    for index, path in PATHS
    for probe in _PROBES
    if (reason := _reason(_mutated(index, path, probe))) is not None
)

_digits = st.text(alphabet="0123456789", min_size=11, max_size=15)
ins_like = st.builds(lambda sex, rest: sex + rest, st.sampled_from("12"), _digits)
spaced_ins = ins_like.map(lambda s: " ".join([s[0], s[1:3], s[3:5], s[5:7], s[7:10], s[10:]]))
names = st.from_regex(r"[A-Z][A-Z-]{3,14}", fullmatch=True)
first_names = st.from_regex(r"[a-z]{4,10}", fullmatch=True)
addresses = st.builds(
    lambda first, last, domain: f"{first}.{last.lower()}@{domain}",
    first_names,
    names,
    st.sampled_from(["patient.mssante.fr", "ch-x.mssante.fr", "gmail.com"]),
)
long_text = st.builds(lambda ins, n: f"{ins} " * n, ins_like, st.integers(15, 25))


def _numberless(text: str) -> str:
    return re.sub(r"[0-9]+", "0", text)


# Arbitrary text, but no piece of the contract's reasons whatever the counts in it
# ("of 3 items" would be found in "an array of 3 items" without being a leak).
_CONTRACT_SHAPES = _numberless(CONTRACT_TEXT)
free_text = st.text(min_size=4, max_size=40).filter(
    lambda s: _numberless(s) not in _CONTRACT_SHAPES
)
patient_strings = st.one_of(ins_like, spaced_ins, names, addresses, long_text, free_text)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    ins_like.map(int),
    st.floats(allow_nan=False, allow_infinity=False),
    patient_strings,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(["ins", "nom", "prenom"]), patient_strings),
                        children, max_size=3),
    ),
    max_leaves=6,
)  # fmt: skip


def _injected(value: Any) -> Iterator[str]:
    """Every string in `value` (keys too, and integers as written) a reason must not quote."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        return
    elif isinstance(value, int):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            yield from _injected(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _injected(item)


def _display_allowed(field: str, value: Any) -> bool:
    """The policy: a short string in a closed vocabulary, a short date-like timestamp."""
    if field in ENUM_LIKE:
        if isinstance(value, int) and not isinstance(value, bool):
            return len(str(abs(value))) <= 5
        return isinstance(value, str) and len(value) <= 40
    if field in TIMESTAMPS and isinstance(value, str):
        return len(value) <= 40 and {c for c in value if c.isalpha()} <= set("TtZz")
    return False


def _assert_no_leak(field: str, value: Any, reason: str) -> None:
    for text in _injected(value):
        if len(text) <= 3 or text in CONTRACT_TEXT:
            continue
        whole = value if isinstance(value, str) else str(value)
        if text == whole and _display_allowed(field, value):
            continue  # the value itself, where the policy lets a reason show it
        assert text not in reason, f"field {field}: {text!r} leaked into {reason!r}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), json_values)
@example((0, ("patient_id",)), PATIENT)
@example((0, ("stay_id",)), 1850775123456)
@example((0, ("correspondents",)), [ADDRESS])
@example((0, ("correspondents", 0, "mss_address")), {"to": ADDRESS})
@example((6, ("recipient",)), [ADDRESS])
@example((0, ("stay_kind",)), ADDRESS)
@example((0, ("stay_kind",)), INS)
@example((0, ("occurred_at",)), INS)
@example((0, ("finess",)), INS)
@example((7, ("name",)), {"nom": "DUPONT Jean"})
def test_no_reason_quotes_an_injected_value(
    where: tuple[int, tuple[str | int, ...]], value: Any
) -> None:
    index, path = where
    field = str(path[-1])
    raw = _mutated(index, path, value)
    reason = _reason(raw)
    if reason is None:
        return  # the value is valid there (a non-empty string in a text field)
    assert f"field '{path[0]}" in reason
    _assert_no_leak(field, value, reason)


@settings(max_examples=200, deadline=None)
@given(json_values)
@example(PATIENT)
@example([ADDRESS])
@example(INS)
def test_a_message_that_is_not_a_record_is_described_not_quoted(value: Any) -> None:
    reason = _reason(orjson.dumps(value))
    assert reason is not None
    _assert_no_leak("", value, reason)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), patient_strings, st.binary(max_size=40))
@example(b'{"patient_id": "', INS, b"")
@example(b'{"nom": ', "DUPONT", b"}")
@example(b"\xff", ADDRESS, b"")
def test_invalid_json_reasons_never_quote_the_bytes(before: bytes, text: str, after: bytes) -> None:
    raw = before + text.encode() + after
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        return
    reason = _reason(raw)
    assert reason is not None and reason.startswith("not valid JSON (UTF-8): ")
    if len(text) > 3 and text not in CONTRACT_TEXT:
        assert text not in reason


@pytest.mark.parametrize(
    ("path", "value", "found"),
    [
        (("stay_id",), 1850775123456, "field 'stay_id': expected a non-empty string, found a number of 13 digits"),
        (("patient_id",), PATIENT, "field 'patient_id': expected a non-empty string, found an object with 2 keys"),
        (("patient_id",), [ADDRESS], "field 'patient_id': expected a non-empty string, found an array of 1 item"),
        (("patient_id",), " \n ", "found a blank string of 3 characters"),
        (("patient_id",), INS * 20, "field 'patient_id': expected at most 200 characters, found 300"),
        (("correspondents",), [ADDRESS], "field 'correspondents[0]': expected a JSON object, found a string of 30 characters"),
        (("correspondents", 0, "rpps"), 10003456789, "field 'correspondents[0].rpps': expected a non-empty string, found a number of 11 digits"),
        (("stay_kind",), ADDRESS, "field 'stay_kind': expected one of hospitalisation_complete, hospitalisation_partielle, had, seance, urgence, consultation, found a string of 30 characters"),
        (("stay_kind",), INS, "found a string of 15 characters"),
        (("stay_kind",), "ambulatoire", 'found a string "ambulatoire"'),
        (("occurred_at",), INS, "field 'occurred_at': expected an RFC 3339 timestamp with offset (e.g. 2023-03-01T10:00:00+01:00), found a string of 15 characters"),
        (("occurred_at",), "2031-01-12T10:00:00+01;00", 'found "2031-01-12T10:00:00+01;00"'),
        (("admitted_at",), "2023-13-10T08:00:00+01:00", "field 'admitted_at': \"2023-13-10T08:00:00+01:00\" is not a real date and time (month must be in 1..12)"),
        (("finess",), INS, "found a string of 15 characters"),
    ],
)  # fmt: skip
def test_examples_of_reasons(path: tuple[str | int, ...], value: Any, found: str) -> None:
    reason = _reason(_mutated(0, path, value))
    assert reason is not None
    assert found in reason


def test_identifying_fields_are_hidden_and_only_the_allow_list_is_shown() -> None:
    seen = set()
    for cls in [*RECORD_TYPES.values(), Correspondent, Attachment]:
        for spec in field_specs(cls):
            seen.add(spec.name)
            if spec.name in ENUM_LIKE:
                assert spec.kind.display is Display.VOCABULARY, spec.name
            elif spec.name in TIMESTAMPS:
                assert spec.kind.display is Display.TIMESTAMP, spec.name
            else:
                assert spec.kind.display is Display.HIDDEN, spec.name
    assert seen >= IDENTIFYING


@pytest.mark.parametrize(
    "message",
    ['unexpected character "DUPONT"', "invalid number 1850775123456 in 'str'", "x" * 100,
     "expected value near 'jean.dupont@patient.mssante.fr'"],
)  # fmt: skip
def test_a_decoder_message_quoting_the_input_is_replaced(message: str) -> None:
    doc = f'{{"patient": {INS}}}'
    reason = json_error_reason(orjson.JSONDecodeError(message, doc, 12))
    assert reason == "not valid JSON (UTF-8): malformed JSON at line 1 column 13 (char 12)"


def test_a_fixed_decoder_message_is_kept_with_its_position() -> None:
    reason = _reason(b'{"a" 1}')
    assert reason == (
        "not valid JSON (UTF-8): unexpected character, expected ':' after key "
        "at line 1 column 6 (char 5)"
    )


def test_a_decoder_message_naming_a_word_of_the_input_is_replaced() -> None:
    exc = orjson.JSONDecodeError("unexpected character DUPONT", '{"nom": DUPONT}', 8)
    assert "DUPONT" not in json_error_reason(exc)
