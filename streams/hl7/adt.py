"""ADT (IHE PAM France 2.11) → stay events: A03 `stay.discharged`, A13
`stay.discharge_cancelled`; admissions and updates only feed the state an A03 reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streams.hl7.context import Context, Outcome, mapped, missing
from streams.hl7.mapping import Facility
from streams.hl7.parsing import Refusal, Segment
from streams.hl7.values import professional_id, rfc3339

# Triggers that describe the stay as it is: they update the admission facts.
STATE_TRIGGERS = frozenset({"A01", "A02", "A04", "A06", "A07", "A08"})
ADMISSIONS = frozenset({"A01", "A04"})  # their ZBE-2 / EVN-6 is the admission
DECEASED_EXIT_MODE = "9"  # ZFM-2 (mode de sortie PMSI)
OPPOSITION = "IO"  # ZFA-9


def _facility(ctx: Context) -> Facility:
    facility = ctx.sender()
    if facility is None:
        raise Refusal(
            "AE",
            "unknown_facility",
            f"MSH-4: expected a sending facility named in the mapping ([[facility]] "
            f"sending_facility), found {ctx.header.sending_facility!r}: ADT messages carry no "
            "FINESS",
            "MSH^1^4",
        )
    return facility


def _unit(ctx: Context, pv1: Segment | None) -> str | None:
    """The medical unit (UF): ZBE-7.10, else ZBE-8.10, else PV1-3.1."""
    zbe = ctx.message.first("ZBE")
    for candidate in (
        zbe.get(7, 10) if zbe else "",
        zbe.get(8, 10) if zbe else "",
        pv1.get(3, 1) if pv1 else "",
    ):
        if candidate:
            return candidate
    return None


def _correspondents(ctx: Context) -> list[dict[str, Any]]:
    """ROL-4 professionals (RPPS, or IDNPS `8` + RPPS) with an X.400 address of ROL-12."""
    found = []
    for rol in ctx.message.all("ROL"):
        rpps = professional_id(rol.get(4, 1))
        if rpps is None:
            continue
        address = None
        for rep in range(1, len(rol.repetitions(12)) + 1):
            if rol.get(12, 3, repetition=rep) in ("X.400", "Internet") and "@" in rol.get(
                12, 4, repetition=rep
            ):
                address = rol.get(12, 4, repetition=rep)
        found.append({"rpps": rpps, "mss_address": address})
    return found


def _merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_rpps = {c["rpps"]: c for c in old}
    for c in new:
        if c["mss_address"] is not None or c["rpps"] not in by_rpps:
            by_rpps[c["rpps"]] = c
    return sorted(by_rpps.values(), key=lambda c: str(c["rpps"]))


def _stay_key(ctx: Context, pid: Segment, pv1: Segment | None) -> str:
    stay_id = ctx.stay_id(pid, pv1)
    if stay_id is None:
        raise missing("PID-18", "the stay number (NDA), or PV1-19", "PID^1^18")
    return stay_id


def _remember_patient(ctx: Context, facility: Facility, pid: Segment) -> str | None:
    ipp = ctx.ipp(pid, facility)
    ins = ctx.ins(pid)
    if ipp is not None and ins is not None:
        ctx.state.set_ipp(facility.finess, ins, ipp)
    return ipp


def _admission_time(ctx: Context, pv1: Segment | None, admission: bool) -> datetime | None:
    moment = ctx.time(pv1, 44) if pv1 is not None else None
    if moment is None and admission:
        zbe = ctx.message.first("ZBE")
        evn = ctx.message.first("EVN")
        moment = (ctx.time(zbe, 2) if zbe else None) or (ctx.time(evn, 6) if evn else None)
    return moment


def update_stay(ctx: Context) -> Outcome:
    """A01, A04, A02, A06, A07, A08: the admission facts of the stay, kept for its A03."""
    facility = _facility(ctx)
    pid = ctx.segment("PID")
    pv1 = ctx.message.first("PV1")
    _remember_patient(ctx, facility, pid)
    stay_id = _stay_key(ctx, pid, pv1)
    facts = ctx.state.stay(facility.finess, stay_id) or {}
    admitted = _admission_time(ctx, pv1, ctx.header.trigger_event in ADMISSIONS)
    if admitted is not None:
        facts["admitted_at"] = rfc3339(admitted)
    unit = _unit(ctx, pv1)
    if unit is not None:
        facts["unit"] = unit
    zfa = ctx.message.first("ZFA")
    if zfa is not None and zfa.get(9):
        facts["dmp_opposition"] = zfa.get(9) == OPPOSITION
    facts["correspondents"] = _merge(facts.get("correspondents", []), _correspondents(ctx))
    ctx.state.set_stay(facility.finess, stay_id, facts)
    return Outcome(ignored="adt_state_only")


def _stay_kind(ctx: Context, facility: Facility, pv1: Segment, unit: str | None) -> str:
    if unit is not None and unit in facility.unit_stay_kinds:
        return facility.unit_stay_kinds[unit]
    patient_class = pv1.get(2)
    kind = mapped(
        ctx.mapping.stay_kinds, patient_class, "PV1-2", "stay_kinds", "unknown_patient_class"
    )
    return kind


def discharge(ctx: Context) -> Outcome:
    """A03 → stay.discharged, completed by the stay's admission facts."""
    facility = _facility(ctx)
    pid = ctx.segment("PID")
    pv1 = ctx.segment("PV1")
    patient_id = _remember_patient(ctx, facility, pid)
    if patient_id is None:
        raise missing(
            "PID-3",
            "the IPP (a repetition with CX-5 = PI of the facility's authority)",
            "PID^1^3",
            "missing_ipp",
        )
    stay_id = _stay_key(ctx, pid, pv1)
    facts = ctx.state.stay(facility.finess, stay_id) or {}
    admitted = ctx.time(pv1, 44)
    admitted_at = rfc3339(admitted) if admitted is not None else facts.get("admitted_at")
    if admitted_at is None:
        raise missing(
            "PV1-44",
            "the admission date, or an earlier admission (A01) of this stay",
            "PV1^1^44",
            "unknown_admission",
        )
    evn = ctx.message.first("EVN")
    discharged = ctx.time(pv1, 45) or (ctx.time(evn, 6) if evn else None)
    if discharged is None:
        raise missing("PV1-45", "the discharge date (or EVN-6)", "PV1^1^45")
    unit = _unit(ctx, pv1) or facts.get("unit")
    admission_unit = facts.get("unit")
    zfa = ctx.message.first("ZFA")
    opposition = (
        zfa.get(9) == OPPOSITION if zfa is not None and zfa.get(9) else facts.get("dmp_opposition")
    )
    zfm = ctx.message.first("ZFM")
    deceased = (
        pid.get(30) == "Y"
        or bool(pid.get(29))
        or (zfm is not None and zfm.get(2) == DECEASED_EXIT_MODE)
    )
    surgical = bool({unit, admission_unit} & facility.surgical_units)
    occurred = (ctx.time(evn, 2) if evn else None) or ctx.message_time()
    event = ctx.event(
        "stay.discharged",
        stay_id,
        occurred,
        facility.finess,
        stay_id=stay_id,
        patient_id=patient_id,
        admitted_at=admitted_at,
        discharged_at=discharged,
        stay_kind=_stay_kind(ctx, facility, pv1, admission_unit or unit),
        ins_status=ctx.ins_status(pid),
        surgical=surgical,
        deceased=deceased,
        dmp_opposition=bool(opposition),
        correspondents=_merge(facts.get("correspondents", []), _correspondents(ctx)),
    )
    return Outcome(events=[event])


def cancel_discharge(ctx: Context) -> Outcome:
    """A13 → stay.discharge_cancelled."""
    facility = _facility(ctx)
    pid = ctx.segment("PID")
    stay_id = _stay_key(ctx, pid, ctx.message.first("PV1"))
    evn = ctx.message.first("EVN")
    occurred = (ctx.time(evn, 2) if evn else None) or ctx.message_time()
    return Outcome(
        events=[
            ctx.event(
                "stay.discharge_cancelled", stay_id, occurred, facility.finess, stay_id=stay_id
            )
        ]
    )
