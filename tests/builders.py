"""Event builders for tests: JSON objects of contract v1 with sensible defaults.

Each builder returns the JSON dict a producer would send; `parse` turns it into a record
through the real validation, so tests exercise the contract too.
"""

from __future__ import annotations

import itertools
from typing import Any

from topics.records import Record
from topics.validation import record_from_object

F1 = "750000001"  # a FINESS géographique of the tests
F2 = "750000002"
EJ = "750000099"

_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def establishment(finess: str = F1, window: str = "F2", **fields: Any) -> dict[str, Any]:
    return {
        "type": "establishment",
        "finess": finess,
        "name": f"Centre hospitalier {finess[-1]}",
        "finess_ej": EJ,
        "region": "IDF",
        "window": window,
        "postponed": False,
        "has_lab": True,
        "has_imaging": True,
        "cme_presentation": True,
        **fields,
    }


def discharged(
    stay_id: str,
    *,
    admitted: str = "2023-01-10T08:00:00+01:00",
    discharged: str = "2023-01-12T10:00:00+01:00",
    patient: str = "P1",
    finess: str = F1,
    occurred: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "type": "stay.discharged",
        "event_id": next_id("evt"),
        "occurred_at": occurred or discharged,
        "finess": finess,
        "stay_id": stay_id,
        "patient_id": patient,
        "admitted_at": admitted,
        "discharged_at": discharged,
        "stay_kind": "hospitalisation_complete",
        "ins_status": "qualifiee",
        **fields,
    }


def cancelled(stay_id: str, occurred: str, finess: str = F1) -> dict[str, Any]:
    return {
        "type": "stay.discharge_cancelled",
        "event_id": next_id("evt"),
        "occurred_at": occurred,
        "finess": finess,
        "stay_id": stay_id,
    }


def deposited(
    document_id: str,
    type_code: str,
    *,
    stay_id: str | None = None,
    patient: str = "P1",
    produced: str = "2023-01-12T09:00:00+01:00",
    deposited_at: str = "2023-01-12T11:00:00+01:00",
    finess: str = F1,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "type": "document.deposited",
        "event_id": next_id("evt"),
        "occurred_at": deposited_at,
        "finess": finess,
        "document_id": document_id,
        "type_code": type_code,
        "patient_id": patient,
        "stay_id": stay_id,
        "cda_level": 1,
        "ins_status": "qualifiee",
        "produced_at": produced,
        "deposited_at": deposited_at,
        **fields,
    }


def produced(
    document_id: str,
    type_code: str,
    *,
    produced_at: str = "2023-01-12T09:00:00+01:00",
    patient: str = "P1",
    stay_id: str | None = None,
    finess: str = F1,
) -> dict[str, Any]:
    return {
        "type": "document.produced",
        "event_id": next_id("evt"),
        "occurred_at": produced_at,
        "finess": finess,
        "document_id": document_id,
        "type_code": type_code,
        "patient_id": patient,
        "stay_id": stay_id,
        "produced_at": produced_at,
    }


def deleted(
    document_id: str, occurred: str = "2023-02-01T10:00:00+01:00", finess: str = F1
) -> dict[str, Any]:
    return {
        "type": "document.deleted",
        "event_id": next_id("evt"),
        "occurred_at": occurred,
        "finess": finess,
        "document_id": document_id,
    }


def deposit_failed(document_id: str, finess: str = F1) -> dict[str, Any]:
    return {
        "type": "document.deposit_failed",
        "event_id": next_id("evt"),
        "occurred_at": "2023-01-12T11:00:00+01:00",
        "finess": finess,
        "document_id": document_id,
        "reason": "DMPClosed",
    }


def mss_sent(
    channel: str,
    recipient: str,
    *,
    sent: str = "2023-01-12T12:00:00+01:00",
    stay_id: str | None = None,
    patient: str = "P1",
    attachments: list[dict[str, Any]] | None = None,
    finess: str = F1,
) -> dict[str, Any]:
    return {
        "type": "mss.sent",
        "event_id": next_id("evt"),
        "occurred_at": sent,
        "finess": finess,
        "message_id": next_id("msg"),
        "channel": channel,
        "patient_id": patient,
        "stay_id": stay_id,
        "recipient": recipient,
        "sent_at": sent,
        "attachments": attachments if attachments is not None else [],
    }


def cda_attachment(level: int | None = 1, ins: str = "qualifiee") -> dict[str, Any]:
    return {
        "document_id": next_id("doc"),
        "type_code": "11490-0",
        "cda_level": level,
        "ins_status": ins,
    }


def parse(obj: dict[str, Any]) -> Record:
    return record_from_object(obj)
