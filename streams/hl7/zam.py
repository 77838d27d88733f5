"""ZAM^Z01 ACK_RECEPTION_DMP (the DMP's answer, relayed by the PFI) → `document.deposited`
or `document.deposit_failed` for each document of the message it names.

A ZAM names no document: OBX-4 of its ACK_RECEPTION_DMP OBX is the MSH-10 of the ORU/MDM
that carried them, and its MSH-5/MSH-6 are that message's MSH-3/MSH-4.
"""

from __future__ import annotations

from typing import Any

from streams.hl7.context import Context, Outcome, missing
from streams.hl7.documents import DELETE
from streams.hl7.parsing import Refusal

ACK_DMP = "ACK_RECEPTION_DMP"


def convert_dmp_ack(ctx: Context) -> Outcome:
    obxs = ctx.message.all("OBX")
    index, obx = next(
        ((i, o) for i, o in enumerate(obxs, start=1) if o.get(3, 1) == ACK_DMP), (0, None)
    )
    if obx is None:
        raise missing("OBX-3", f"an OBX {ACK_DMP}", "OBX", "missing_segment")
    original = obx.get(4)
    if not original:
        raise missing("OBX-4", "the MSH-10 of the ORU/MDM acknowledged", f"OBX^{index}^4")
    answer = obx.get(5, 1).upper()
    if answer not in ("Y", "N"):
        raise Refusal(
            "AE",
            "invalid_field",
            f"OBX-5: expected Y (deposited) or N (refused), found {answer[:4]!r}",
            f"OBX^{index}^5",
        )
    header = ctx.header
    carried = ctx.state.message(header.receiving_application, header.receiving_facility, original)
    if carried is None:
        raise Refusal(
            "AE",
            "zam_unknown_control_id",
            f"OBX-4: expected the MSH-10 of an ORU/MDM received from "
            f"{header.receiving_application!r}/{header.receiving_facility!r} (MSH-5/MSH-6), "
            f"found {original[:40]!r}, which no message received names",
            f"OBX^{index}^4",
        )
    occurred = ctx.message_time()
    finess = carried["finess"]
    documents = [d for d in carried["documents"] if d["action"] != DELETE]
    events: list[dict[str, Any]] = []
    if answer == "N":
        err = ctx.message.first("ERR")
        reason = (err.get(5, 1) or err.get(3, 1)) if err is not None else ""
        for doc in documents:
            events.append(
                ctx.event(
                    "document.deposit_failed",
                    doc["document_id"],
                    occurred,
                    finess,
                    document_id=doc["document_id"],
                    reason=reason or "unknown",
                )
            )
        return Outcome(events=events, ignored=None if events else "deletion_acknowledged")
    for doc in documents:
        if doc["cda_level"] is None:
            raise Refusal(
                "AE",
                "cda_level_unknown",
                f"OBX-4: the message {original[:40]!r} carried a body that is no CDA, so the "
                "deposit has no CDA level (expected nonXMLBody or structuredBody)",
                f"OBX^{index}^4",
            )
        events.append(
            ctx.event(
                "document.deposited",
                doc["document_id"],
                occurred,
                finess,
                document_id=doc["document_id"],
                type_code=doc["type_code"],
                patient_id=doc["patient_id"],
                cda_level=doc["cda_level"],
                ins_status=doc["ins_status"],
                produced_at=doc["produced_at"],
                deposited_at=occurred,
                stay_id=doc["stay_id"],
                replaces=doc["replaces"],
            )
        )
    return Outcome(events=events, ignored=None if events else "deletion_acknowledged")
