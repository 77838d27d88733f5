"""The HL7 mapping configuration: one TOML file (stdlib tomllib), validated key by key.

What no HL7 message says and each establishment must: which FINESS géographique a sending
facility is, whose IPP PID-3 carries, how PV1-2 (and the unit) gives the stay kind, which
units make a stay surgical, how PID-32 and the INS give `ins_status`, and the time zone of
timestamps without an offset. Every error names its key: `facility[2].finess: expected …`.
docs/hl7-mapping.example.toml documents every key; `DEFAULT_MAPPING` (below) serves the ANS
corpus and the test fixtures when no file is given.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streams.cli.errors import ConfigError
from topics.fields import is_finess
from topics.records import INS_STATUSES, STAY_KINDS

# PID-32 (identity reliability, PAM France / RNIV) → the contract's ins_status.
DEFAULT_RELIABILITY = {
    "PROV": "provisoire",
    "RECUP": "recuperee",
    "VALI": "validee",
    "QUAL": "qualifiee",
}
# PV1-2 (patient class) → stay kind; I cannot tell partielle / HAD apart: units can.
DEFAULT_STAY_KINDS = {
    "I": "hospitalisation_complete",
    "O": "consultation",
    "E": "urgence",
    "R": "seance",
}

DEFAULT_MAPPING = """
time_zone = "Europe/Paris"

# The ANS corpus (../shared/hl7v2): its ADT come from GAM / CHU-X, which has no FINESS of
# its own in the messages; its document senders name theirs in PRT (SB).
[[facility]]
sending_facility = "CHU-X"
finess = "340000017"
ipp_authorities = ["CHU-X"]
surgical_units = ["6268"]

[[facility]]
sending_facility = "labo"
finess = "120459876"
cda_ipp_roots = ["1.2.3.4.567.8.9.10"]

# The fixtures of tests/fixtures/hl7/: Centre hospitalier Sunes (MSH-4 CH-SUNES).
[[facility]]
sending_facility = "CH-SUNES"
finess = "750000010"
ipp_authorities = ["CH-SUNES", "1.2.250.1.999.75.1"]
cda_ipp_roots = ["1.2.250.1.999.75.1"]
surgical_units = ["CHIR"]
[facility.unit_stay_kinds]
HDJ = "hospitalisation_partielle"
HAD = "had"
"""


class MappingError(ConfigError):
    """The mapping file is wrong; the message names the key."""


@dataclass(frozen=True, slots=True)
class Facility:
    """One sending facility (MSH-4, optionally with MSH-3) and what it means."""

    sending_facility: str
    finess: str
    sending_application: str = ""  # "" matches any MSH-3
    ipp_authorities: tuple[str, ...] = ()  # PID-3 CX-4 namespace or universal id; () = any PI
    cda_ipp_roots: tuple[str, ...] = ()  # CDA recordTarget/patientRole/id roots of the IPP
    surgical_units: frozenset[str] = frozenset()
    unit_stay_kinds: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hl7Mapping:
    time_zone: ZoneInfo
    facilities: tuple[Facility, ...]
    reliability: Mapping[str, str]
    missing_reliability: str  # PID-32 empty
    qualified_needs_ins: bool  # qualifiee only with an INS in PID-3, else validee
    stay_kinds: Mapping[str, str]

    def facility(self, application: str, facility: str) -> Facility | None:
        """The facility of MSH-3 / MSH-4: an entry naming the application wins."""
        matches = [f for f in self.facilities if f.sending_facility == facility]
        exact = [f for f in matches if f.sending_application == application]
        anyapp = [f for f in matches if not f.sending_application]
        chosen = exact or anyapp
        return chosen[0] if chosen else None

    def by_finess(self, finess: str) -> Facility | None:
        return next((f for f in self.facilities if f.finess == finess), None)


def _fail(key: str, expected: str, value: Any) -> MappingError:
    return MappingError(f"HL7 mapping: {key}: expected {expected}, found {value!r}")


def _text(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise _fail(f"{where}{key}", "a non-empty string", value)
    return value.strip()


def _texts(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(f"{where}{key}", "a list of non-empty strings", value)
    return tuple(v.strip() for v in value)


def _choices(
    table: Mapping[str, Any],
    key: str,
    where: str,
    allowed: tuple[str, ...],
    default: Mapping[str, str],
) -> dict[str, str]:
    value = table.get(key, default)
    if not isinstance(value, Mapping):
        raise _fail(f"{where}{key}", "a table of code = value", value)
    result = {}
    for code, target in value.items():
        if target not in allowed:
            raise _fail(f"{where}{key}.{code}", "one of " + ", ".join(allowed), target)
        result[str(code).strip()] = target
    return result


_FACILITY_KEYS = {
    "sending_facility",
    "sending_application",
    "finess",
    "ipp_authorities",
    "cda_ipp_roots",
    "surgical_units",
    "unit_stay_kinds",
}
_TOP_KEYS = {"time_zone", "facility", "identity", "stay_kinds"}
_IDENTITY_KEYS = {"reliability", "missing", "qualified_needs_ins"}


def _unknown(table: Mapping[str, Any], known: set[str], where: str) -> None:
    for key in table:
        if key not in known:
            raise _fail(f"{where}{key}", "one of " + ", ".join(sorted(known)), "an unknown key")


def _facility(table: Any, where: str) -> Facility:
    if not isinstance(table, Mapping):
        raise _fail(where.rstrip("."), "a table", table)
    _unknown(table, _FACILITY_KEYS, where)
    finess = _text(table, "finess", where)
    if not is_finess(finess):
        raise _fail(f"{where}finess", "a FINESS géographique of 9 characters", finess)
    return Facility(
        sending_facility=_text(table, "sending_facility", where),
        sending_application=_text(table, "sending_application", where, default=""),
        finess=finess,
        ipp_authorities=_texts(table, "ipp_authorities", where),
        cda_ipp_roots=_texts(table, "cda_ipp_roots", where),
        surgical_units=frozenset(_texts(table, "surgical_units", where)),
        unit_stay_kinds=_choices(table, "unit_stay_kinds", where, STAY_KINDS, {}),
    )


def mapping_from_dict(data: Mapping[str, Any]) -> Hl7Mapping:
    """Validate a decoded TOML document as a mapping."""
    _unknown(data, _TOP_KEYS, "")
    zone_name = _text(data, "time_zone", "", default="Europe/Paris")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail("time_zone", "an IANA time zone such as 'Europe/Paris'", zone_name) from None
    identity = data.get("identity", {})
    if not isinstance(identity, Mapping):
        raise _fail("identity", "a table", identity)
    _unknown(identity, _IDENTITY_KEYS, "identity.")
    missing = identity.get("missing", "provisoire")
    if missing not in INS_STATUSES:
        raise _fail("identity.missing", "one of " + ", ".join(INS_STATUSES), missing)
    needs_ins = identity.get("qualified_needs_ins", True)
    if not isinstance(needs_ins, bool):
        raise _fail("identity.qualified_needs_ins", "true or false", needs_ins)
    facilities = data.get("facility", [])
    if not isinstance(facilities, list):
        raise _fail("facility", "an array of tables ([[facility]])", facilities)
    parsed = tuple(_facility(f, f"facility[{i}].") for i, f in enumerate(facilities, start=1))
    seen: set[tuple[str, str]] = set()
    for i, f in enumerate(parsed, start=1):
        key = (f.sending_application, f.sending_facility)
        if key in seen:
            raise _fail(
                f"facility[{i}].sending_facility",
                "each sending facility (and application) once",
                f.sending_facility,
            )
        seen.add(key)
    return Hl7Mapping(
        time_zone=zone,
        facilities=parsed,
        reliability=_choices(
            identity, "reliability", "identity.", INS_STATUSES, DEFAULT_RELIABILITY
        ),
        missing_reliability=missing,
        qualified_needs_ins=needs_ins,
        stay_kinds=_choices(data, "stay_kinds", "", STAY_KINDS, DEFAULT_STAY_KINDS),
    )


def parse_mapping(text: str, source: str = "the mapping") -> Hl7Mapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"HL7 mapping: {source} is not valid TOML: {exc}") from None
    return mapping_from_dict(data)


def load_mapping(path: Path | None = None) -> Hl7Mapping:
    """The mapping in `path`, or the built-in default when `path` is None."""
    if path is None:
        return parse_mapping(DEFAULT_MAPPING, "the built-in default")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"HL7 mapping: cannot read {path}: {exc.strerror}") from None
    return parse_mapping(text, str(path))
