"""The counting rules of SPEC.md (rules 4–9), as pure functions over an establishment's facts.

Each function gives the *contribution* of one unit — a stay, a report (DS 2.1/3.1), an MSS Pro
recipient (DS 4.1) — to the establishment's aggregates (processors.aggregates): counts under
monthly keys. How months add up to a funding window, and how DS 4.1 is counted from its
correspondents, is in processors.figures. Every counting rule of SPEC.md lives here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from processors.aggregates import (
    DENOMINATOR,
    NAMED,
    NUMERATOR,
    SENT,
    SENT_IN_GRACE,
    Contribution,
    DischargeDay,
    PeopleKey,
    RateKey,
)
from processors.catalogue import (
    HISTORY_TYPE_CODES,
    REPORT_INDICATORS,
    STAY_DOCUMENT_INDICATORS,
)
from processors.facts import DocumentFacts, RecipientFacts, StayFacts, StayVersion
from processors.periods import month_bounds, month_key, paris_date, within_grace
from processors.settings import Settings
from topics.records import QUALIFIED_INS, MssSent


class Facts(Protocol):
    """What the rules read of an establishment (see processors.establishment)."""

    settings: Settings

    def documents_of_stay(self, stay_id: str) -> Iterable[DocumentFacts]: ...
    def documents_of_patient(self, patient_id: str) -> Iterable[DocumentFacts]: ...
    def stays_of_patient(self, patient_id: str) -> Iterable[StayFacts]: ...
    def is_replaced(self, document_id: str) -> bool: ...


def counts_for_stay(doc: DocumentFacts, facts: Facts) -> bool:
    """A deposit still standing: acknowledged, qualified, not deleted, not replaced (4, 5)."""
    deposit = doc.deposit
    return (
        deposit is not None
        and deposit.qualified
        and not doc.deleted
        and not facts.is_replaced(doc.document_id)
    )


def _excluded(version: StayVersion, settings: Settings) -> bool:
    """The exclusions from DS 1.x denominators (settings, default off)."""
    return (
        (settings.exclude_dmp_opposition and version.dmp_opposition)
        or (settings.exclude_deceased and version.deceased)
        or (settings.exclude_unqualified_ins and version.ins_status != QUALIFIED_INS)
    )


def _stay_document_types(stay: StayFacts, version: StayVersion, facts: Facts) -> set[str]:
    """Rule 4: the type codes of the stay's qualifying deposits within discharge + grace."""
    found = set()
    for doc in facts.documents_of_stay(stay.stay_id):
        deposit = doc.deposit
        if (
            deposit is not None
            and deposit.type_code not in found
            and counts_for_stay(doc, facts)
            and within_grace(
                deposit.deposited_day, version.discharge_day, facts.settings.grace_days
            )
        ):
            found.add(deposit.type_code)
    return found


def is_returning(stay: StayFacts, version: StayVersion, facts: Facts) -> bool:
    """Rule 6: another active stay of the patient discharged before this admission, within
    lookback_days (Paris calendar days)."""
    admission_day = version.admission_day
    for other in facts.stays_of_patient(version.patient_id):
        earlier = other.version
        if other.stay_id == stay.stay_id or earlier is None or not other.active:
            continue
        if earlier.discharged_at < version.admitted_at and (
            (admission_day - earlier.discharge_day).days <= facts.settings.lookback_days
        ):
            return True
    return False


def has_history_deposit(version: StayVersion, facts: Facts) -> bool:
    """Rule 6: a qualifying deposit for the patient, produced before the admission and
    deposited between the admission and discharge + grace."""
    for doc in facts.documents_of_patient(version.patient_id):
        deposit = doc.deposit
        if (
            deposit is not None
            and deposit.type_code in HISTORY_TYPE_CODES
            and counts_for_stay(doc, facts)
            and deposit.produced_at < version.admitted_at <= deposit.deposited_at
            and within_grace(
                deposit.deposited_day, version.discharge_day, facts.settings.grace_days
            )
        ):
            return True
    return False


def _has_citizen_message(stay: StayFacts, version: StayVersion, settings: Settings) -> bool:
    """Rule 9: an MSS citoyenne message naming the stay, sent by discharge + grace."""
    return any(
        within_grace(paris_date(sent), version.discharge_day, settings.grace_days)
        for sent in stay.citizen_messages.values()
    )


def stay_contribution(stay: StayFacts, facts: Facts) -> Contribution:
    """DS 1.1, 1.2, 1.3, 1.4, 4.1 (denominator side) and 4.2 for one stay."""
    version = stay.version
    settings = facts.settings
    if version is None:
        return {}
    # The watermark ("now" of the establishment) counts every current version (SPEC).
    watermark: Contribution = {DischargeDay(version.discharge_day.isoformat()): 1}
    if not stay.active or version.stay_kind not in settings.stay_scope:
        return watermark
    flags: dict[str, tuple[bool, bool]] = {}  # indicator → (in denominator, in numerator)
    if not _excluded(version, settings):
        deposited = _stay_document_types(stay, version, facts)
        for indicator, type_code in STAY_DOCUMENT_INDICATORS.items():
            if indicator == "DS1.3" and not version.surgical:
                continue
            flags[indicator] = (True, type_code in deposited)
        if is_returning(stay, version, facts):
            flags["DS1.4"] = (True, has_history_deposit(version, facts))
    flags["DS4.2"] = (True, _has_citizen_message(stay, version, settings))

    month = month_key(version.discharge_day)
    contribution = watermark
    for indicator, (_, numerator) in flags.items():
        contribution[RateKey(DENOMINATOR, indicator, month)] = 1
        if numerator:
            contribution[RateKey(NUMERATOR, indicator, month)] = 1
    for rpps, address in version.correspondents:
        if address:  # rule 8: only MSS-equipped correspondents
            contribution[PeopleKey(NAMED, month, rpps)] = 1
    return contribution


def report_contribution(chain: list[DocumentFacts], facts: Facts) -> Contribution:
    """Rule 7: one biology or imaging report, all its versions (replacements) together.

    The report's type and period are those of its earliest-produced version; it counts when a
    current (not replaced) version is a qualifying deposit of that type, not deleted, deposited
    no later than its own production + grace.
    """
    dated = [(doc.produced_at, doc.document_id, doc) for doc in chain if doc.produced_at]
    if not dated:
        return {}
    produced_at, _, first = min(dated, key=lambda item: (item[0], item[1]))
    versions = [doc for _, _, doc in dated]
    type_code = first.type_code
    indicator = REPORT_INDICATORS.get(type_code or "")
    if indicator is None:
        return {}
    numerator = any(
        doc.deposit is not None
        and doc.deposit.type_code == type_code
        and counts_for_stay(doc, facts)
        and within_grace(
            doc.deposit.deposited_day,
            doc.deposit.produced_day,
            facts.settings.grace_days,
        )
        for doc in versions
    )
    month = month_key(paris_date(produced_at))
    contribution: Contribution = {RateKey(DENOMINATOR, indicator, month): 1}
    if numerator:
        contribution[RateKey(NUMERATOR, indicator, month)] = 1
    return contribution


def recipient_contribution(recipient: RecipientFacts, settings: Settings) -> Contribution:
    """Rule 8, numerator side: the months a correspondent was reached in. A qualifying message
    sent on day d reaches it for d's month, and for every earlier month whose end + grace is
    on or after d (SENT_IN_GRACE: the window's last month uses it too)."""
    contribution: Contribution = {}
    rpps = recipient.rpps
    for day in recipient.qualifying_messages.values():
        month = month_key(day)
        contribution[PeopleKey(SENT, month, rpps)] = 1
        earlier = month_key(day - timedelta(days=settings.grace_days))
        while earlier < month:
            contribution[PeopleKey(SENT_IN_GRACE, earlier, rpps)] = 1
            earlier = month_key(month_bounds(earlier)[1] + timedelta(days=1))
    return contribution


def qualifying_pro_message(message: MssSent) -> bool:
    """Rule 8: an MSS Pro message carrying a CDA-R2 document (level 1 or 3), qualified INS."""
    return message.channel == "pro" and any(
        a.cda_level in (1, 3) and a.ins_status == QUALIFIED_INS for a in message.attachments
    )


def correspondents_reached(
    named: set[str], sent: set[str], sent_in_grace: set[str]
) -> tuple[int, int]:
    """Rule 8 for one period: (N, D). D = the distinct equipped correspondents named on the
    period's stays; N = those of D sent a qualifying message in the period or within grace
    after its end."""
    return len(named & (sent | sent_in_grace)), len(named)
