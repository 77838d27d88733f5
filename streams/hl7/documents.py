"""MDM^T02/T10/T04 and ORU^R01 (CI-SIS "transmission de documents CDA") → document events.

Each document OBX (value type ED, a LOINC code in OBX-3) is one document: a new one gives
`document.produced`, a deletion `document.deleted`, a replacement no event yet (its ZAM's
`document.deposited` carries `replaces`, so the report is not counted twice). PRT recipients
give `mss.sent` when the metadata OBX ask for MSSanté. What the ZAM will need is kept under
the message's (MSH-3, MSH-4, MSH-10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.hl7.cda import Cda, decode_base64, read_cda
from streams.hl7.context import Context, Outcome, missing
from streams.hl7.mapping import Facility
from streams.hl7.parsing import Refusal, Segment
from streams.hl7.values import digest, entity_id, professional_id, rfc3339, structure_finess
from topics.fields import is_finess

NEW, REPLACE, DELETE = "new", "replace", "delete"
MDM_ACTIONS = {"T02": NEW, "T10": REPLACE, "T04": DELETE}
ORU_ACTIONS = {"F": NEW, "C": REPLACE, "D": DELETE}  # OBX-11
PATIENT_MAILBOX = "@patient.mssante.fr"
_LOINC = re.compile(r"\d{1,7}-\d")


@dataclass
class Document:
    obx: Segment
    action: str
    document_id: str
    type_code: str
    cda_level: int | None
    produced_at: datetime
    replaces: str | None
    cda: Cda | None


def _flag(ctx: Context, code: str) -> bool:
    """A metadata OBX (MetaDMPMSS) such as DESTDMP set to Y."""
    return any(
        obx.get(3, 1) == code and obx.get(5, 1).upper() == "Y" for obx in ctx.message.all("OBX")
    )


def _finess(ctx: Context, facility: Facility | None) -> str:
    """PRT (SB) PRT-8.10 when PRT-8.7 is FINEG; else the sending facility's mapping."""
    for prt in ctx.message.all("PRT"):
        if prt.get(4, 1) == "SB" and prt.get(8, 7) == "FINEG" and prt.get(8, 10):
            finess = structure_finess(prt.get(8, 10))
            if not is_finess(finess):
                raise Refusal(
                    "AE",
                    "invalid_finess",
                    "PRT-8.10 (sender SB, FINEG): expected a FINESS géographique of 9 "
                    f"characters or 1 + FINESS, found {len(finess)} characters",
                    "PRT^1^8",
                )
            return finess
    if facility is not None:
        return facility.finess
    raise Refusal(
        "AE",
        "unknown_facility",
        "PRT-8 (sender SB): expected a FINESS géographique (PRT-8.7 FINEG), or a sending "
        f"facility (MSH-4) named in the mapping, found neither (MSH-4 "
        f"{ctx.header.sending_facility!r})",
        "PRT^1^8",
    )


def _document_obx(ctx: Context) -> list[Segment]:
    """OBX-2 ED with a LOINC code in OBX-3 (OBX-3.3 LN, or a LOINC-shaped code when V1.2
    omits the coding system); the metadata OBX (MetaDMPMSS) are not documents."""
    return [
        obx
        for obx in ctx.message.all("OBX")
        if obx.get(2) == "ED"
        and obx.get(3, 3) != "MetaDMPMSS"
        and (obx.get(3, 3) == "LN" or _LOINC.fullmatch(obx.get(3, 1)) is not None)
    ]


def _read(ctx: Context, obx: Segment, index: int) -> Cda | None:
    location = f"OBX^{index}^5"
    payload = obx.get(5, 5)
    if not payload:
        raise missing(f"OBX-5.5 (OBX {obx.get(1)})", "the document", location, "no_document")
    if obx.get(5, 4).lower() == "base64":
        data = decode_base64(payload, location)
    else:
        data = payload.encode("utf-8")
    return read_cda(data, location)


def _documents(ctx: Context) -> list[Document]:
    is_mdm = ctx.header.message_code == "MDM"
    txa = ctx.message.first("TXA") if is_mdm else None
    if is_mdm and txa is None:
        raise Refusal(
            "AE", "missing_segment", "expected a TXA segment in an MDM, found none", "TXA"
        )
    found = []
    segments = _document_obx(ctx)
    if not segments:
        raise Refusal(
            "AE",
            "no_document",
            "OBX: expected a document OBX (OBX-2 ED, OBX-3 a LOINC code), found none",
            "OBX",
        )
    for obx in segments:
        index = ctx.message.all("OBX").index(obx) + 1
        if is_mdm:
            action = MDM_ACTIONS[ctx.header.trigger_event]
        else:
            status = obx.get(11)
            if status not in ORU_ACTIONS:
                raise Refusal(
                    "AE",
                    "unsupported_result_status",
                    f"OBX-11: expected F (new), C (replacement) or D (deletion), found {status!r}",
                    f"OBX^{index}^11",
                )
            action = ORU_ACTIONS[status]
        cda = _read(ctx, obx, index)
        if txa is not None:
            document_id = entity_id(txa, 12) or (cda.document_id if cda else None)
            replaces = entity_id(txa, 13) or (cda.replaces if cda else None)
            type_code = txa.get(2) or obx.get(3, 1)
        else:
            document_id = cda.document_id if cda else None
            replaces = cda.replaces if cda else None
            type_code = obx.get(3, 1)
        if document_id is None:
            where = "TXA-12" if is_mdm else f"OBX-5 (OBX {obx.get(1)})"
            raise missing(
                where,
                "the document id (an ORU names it only in the CDA's ClinicalDocument/id; "
                "this body is no CDA)",
                "TXA^1^12" if is_mdm else f"OBX^{index}^5",
                "no_document_id",
            )
        produced = None
        if cda is not None and cda.effective_time:
            produced = ctx.time_value(cda.effective_time, "CDA effectiveTime", f"OBX^{index}^5")
        if produced is None and txa is not None:
            produced = ctx.time(txa, 4)
        found.append(
            Document(
                obx=obx,
                action=action,
                document_id=document_id,
                type_code=type_code,
                cda_level=cda.level if cda else None,
                produced_at=produced or ctx.message_time(),
                replaces=replaces if action == REPLACE else None,
                cda=cda,
            )
        )
    return found


def _patient_id(ctx: Context, facility: Facility | None, finess: str, docs: list[Document]) -> str:
    """PID-3 PI; else a CDA recordTarget id under a configured IPP root; else the IPP an
    earlier ADT gave for this INS at this FINESS."""
    pid = ctx.segment("PID")
    facility = facility or ctx.mapping.by_finess(finess)
    ipp = ctx.ipp(pid, facility)
    if ipp is not None:
        return ipp
    roots = facility.cda_ipp_roots if facility is not None else ()
    for doc in docs:
        for root, extension in doc.cda.record_target_ids if doc.cda else ():
            if root in roots and extension:
                return extension
    ins = ctx.ins(pid)
    if ins is not None:
        known = ctx.state.ipp_of(finess, ins)
        if known is not None:
            return known
    raise Refusal(
        "AE",
        "unknown_patient",
        "PID-3: expected the IPP (CX-5 PI), a CDA recordTarget id under an IPP root of the "
        "mapping (cda_ipp_roots), or an INS an earlier ADT of this FINESS linked to an IPP; "
        "found " + ("an INS only, unknown here" if ins else "none of them"),
        "PID^1^3",
    )


def _recipients(ctx: Context, stay_id: str | None) -> list[tuple[str, str]]:
    """(channel, recipient) for each PRT RCT the metadata send a mail to."""
    to_pro = _flag(ctx, "DESTMSSANTEPS") and not _flag(ctx, "MASQUE_PS")
    to_patient = _flag(ctx, "DESTMSSANTEPAT") and not _flag(ctx, "INVISIBLE_PATIENT")
    found: list[tuple[str, str]] = []
    for prt in ctx.message.all("PRT"):
        if prt.get(4, 1) != "RCT":
            continue
        address = prt.get(15, 4)
        if prt.get(5, 13) == "INS" or address.lower().endswith(PATIENT_MAILBOX):
            if to_patient and stay_id is not None and address:
                # The patient's address is <INS>@patient.mssante.fr: never sent as is.
                found.append(("citoyenne", f"patient-{digest(address.lower())}"))
            continue
        rpps = professional_id(prt.get(5, 1))
        if to_pro and rpps is not None:
            found.append(("pro", rpps))
    return sorted(set(found))


def convert_documents(ctx: Context) -> Outcome:
    facility = ctx.sender()
    finess = _finess(ctx, facility)
    docs = _documents(ctx)
    pid = ctx.segment("PID")
    pv1 = ctx.message.first("PV1")
    stay_id = ctx.stay_id(pid, pv1)
    sent = [d for d in docs if d.action != DELETE]
    patient_id = _patient_id(ctx, facility, finess, docs) if sent else None
    ins_status = ctx.ins_status(pid) if sent else None
    occurred = ctx.message_time()
    events: list[dict[str, Any]] = []
    for doc in docs:
        if doc.action == NEW:
            events.append(
                ctx.event(
                    "document.produced",
                    doc.document_id,
                    occurred,
                    finess,
                    document_id=doc.document_id,
                    type_code=doc.type_code,
                    patient_id=patient_id,
                    produced_at=doc.produced_at,
                    stay_id=stay_id,
                )
            )
        elif doc.action == DELETE:
            events.append(
                ctx.event(
                    "document.deleted",
                    doc.document_id,
                    occurred,
                    finess,
                    document_id=doc.document_id,
                )
            )
    if sent:
        attachments = [
            {
                "document_id": d.document_id,
                "type_code": d.type_code,
                "cda_level": d.cda_level,
                "ins_status": ins_status,
            }
            for d in sent
        ]
        for channel, recipient in _recipients(ctx, stay_id):
            about = f"{channel}:{recipient}"
            events.append(
                ctx.event(
                    "mss.sent",
                    about,
                    occurred,
                    finess,
                    message_id=ctx.event_key(about),
                    channel=channel,
                    patient_id=patient_id,
                    recipient=recipient,
                    sent_at=occurred,
                    stay_id=stay_id,
                    attachments=attachments,
                )
            )
    header = ctx.header
    ctx.state.set_message(
        header.sending_application,
        header.sending_facility,
        header.control_id,
        {
            "finess": finess,
            "documents": [
                {
                    "action": d.action,
                    "document_id": d.document_id,
                    "type_code": d.type_code,
                    "patient_id": patient_id,
                    "stay_id": stay_id,
                    "cda_level": d.cda_level,
                    "ins_status": ins_status,
                    "produced_at": rfc3339(d.produced_at),
                    "replaces": d.replaces,
                }
                for d in docs
            ],
        },
    )
    return Outcome(events=events, ignored=None if events else "replacement_awaits_deposit")
