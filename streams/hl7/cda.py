"""The CDA carried base64 in a document OBX: its id, level, patient ids and replaced id.

Decoded with defusedxml: no DTD, no entity expansion, no network access. A body that is not a
`ClinicalDocument` (the ANS placeholders, "Document médical au format CDA…") is no CDA
(`None`); base64 that does not decode, or XML that does not parse, is a refusal.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from streams.hl7.parsing import Refusal

NS = {"hl7": "urn:hl7-org:v3"}
_BASE64_JUNK = re.compile(rb"[\s]")
_BASE64_ALPHABET = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


@dataclass(frozen=True, slots=True)
class Cda:
    document_id: str | None  # root, or root^extension
    type_code: str | None
    effective_time: str | None  # HL7 TS as written, maybe with an offset
    level: int | None  # 1 nonXMLBody, 3 structuredBody with entries, None: neither
    record_target_ids: tuple[tuple[str, str], ...]  # (root, extension)
    replaces: str | None  # relatedDocument RPLC parentDocument id


def instance_id(element: Element | None) -> str | None:
    """An II as one string: `root`, or `root^extension` when there is an extension."""
    if element is None:
        return None
    root = (element.get("root") or "").strip()
    extension = (element.get("extension") or "").strip()
    if not root:
        return None
    return f"{root}^{extension}" if extension else root


def decode_base64(text: str, location: str) -> bytes:
    """OBX-5.5 to bytes; a refusal naming the OBX when the base64 is cut or not base64."""
    data = _BASE64_JUNK.sub(b"", text.encode("ascii", errors="replace"))
    if _BASE64_ALPHABET.fullmatch(data) is None:
        raise Refusal(
            "AE",
            "bad_base64",
            "OBX-5.5: expected base64 (A-Z, a-z, 0-9, +, /), found other characters",
            location,
        )
    if len(data) % 4 == 1:  # 2 or 3 is only missing padding (the ANS files omit it)
        raise Refusal(
            "AE",
            "truncated_base64",
            f"OBX-5.5: expected base64, found {len(data)} characters, one more than whole "
            "groups of four: the document was cut",
            location,
        )
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except binascii.Error:
        raise Refusal(
            "AE",
            "truncated_base64",
            "OBX-5.5: the base64 does not decode (bad padding)",
            location,
        ) from None


def read_cda(data: bytes, location: str) -> Cda | None:
    """The CDA in `data`, `None` if `data` is no ClinicalDocument (a placeholder)."""
    if b"ClinicalDocument" not in data[:4096]:
        return None
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Refusal(
            "AE",
            "cda_forbidden_xml",
            f"OBX-5.5: the CDA declares a {type(exc).__name__.removesuffix('Forbidden')}, "
            "which is never read (no DTD, no entities, no external references)",
            location,
        ) from None
    except SafeET.ParseError as exc:
        if not data.rstrip().endswith(b"ClinicalDocument>"):
            raise Refusal(
                "AE",
                "truncated_base64",
                "OBX-5.5: the decoded CDA ends before its closing </ClinicalDocument>: "
                "the base64 was cut",
                location,
            ) from None
        raise Refusal(
            "AE",
            "bad_cda",
            f"OBX-5.5: expected a well-formed CDA XML document, found an XML error at line "
            f"{exc.position[0]} (cut or corrupted)",
            location,
        ) from None
    if root.tag != "{urn:hl7-org:v3}ClinicalDocument":
        return None
    component = root.find("hl7:component", NS)
    level = None
    if component is not None:
        if component.find("hl7:nonXMLBody", NS) is not None:
            level = 1
        elif (body := component.find("hl7:structuredBody", NS)) is not None:
            # Coded entries make level 3; sections without any are level 2, which the
            # contract does not know: read as 1 (a structured header), never as 3.
            level = 3 if body.find(".//hl7:entry", NS) is not None else 1
    code = root.find("hl7:code", NS)
    effective = root.find("hl7:effectiveTime", NS)
    targets = tuple(
        ((ident.get("root") or "").strip(), (ident.get("extension") or "").strip())
        for ident in root.findall("hl7:recordTarget/hl7:patientRole/hl7:id", NS)
    )
    replaces = None
    for related in root.findall("hl7:relatedDocument", NS):
        if related.get("typeCode") == "RPLC":
            replaces = instance_id(related.find("hl7:parentDocument/hl7:id", NS))
    return Cda(
        document_id=instance_id(root.find("hl7:id", NS)),
        type_code=(code.get("code") if code is not None else None),
        effective_time=(effective.get("value") if effective is not None else None),
        level=level,
        record_target_ids=targets,
        replaces=replaces,
    )
