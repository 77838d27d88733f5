"""Which stays a change of a fact can reach: the only ones `Establishment.apply` recomputes.

A stay's contribution (processors.rules.stay_contribution) reads, beside its own facts:
- the documents of the stay whose type is a stay indicator's (DS 1.1–1.3), with their
  standing (rule 4–5: deposit, deletion, the documents replacing them);
- the patient's other active stays discharged before its admission, within lookback_days
  (rule 6: is it a returning-patient stay);
- the patient's history deposits (DS 1.4) produced before its admission and deposited after
  it (`rules.history_candidate`).
So a document reaches its own stay only when its type is a stay indicator's, and there only
that type's indicator; the patient's stays only when it is a history deposit, for the stays
admitted between its production and its deposit, and there only DS 1.4's outcome. A stay
reaches only the patient's stays admitted within the lookback after its discharge, and there
only whether they are in DS 1.4. Everything is judged on the facts before AND after the
change: a unit that read the old facts must forget them. The full path
(`Establishment.recompute`) is the oracle the property tests compare this with.
"""

from __future__ import annotations

from typing import Final

from processors.catalogue import HISTORY_TYPE_CODES, STAY_DOCUMENT_INDICATORS
from processors.facts import Deposit, DocumentFacts, StayFacts, StayVersion
from processors.rules import counts_as_earlier, history_candidate
from processors.values import Value

STAY_DOCUMENT_TYPES: Final = frozenset(STAY_DOCUMENT_INDICATORS.values())


class DocumentReach(Value):
    """The stays one state of a document can count for (processors.values: two or three
    made per document merged)."""

    __slots__ = ("history", "stay_id", "type_code")
    FIELDS = ("stay_id", "history", "type_code")
    stay_id: Final[str | None]  # its stay, when its type is a stay indicator's
    history: Final[Deposit | None]  # its deposit, when it is a history deposit (DS 1.4)
    type_code: Final[str | None]  # its type, with stay_id: the one indicator of it it reaches

    def __init__(
        self,
        stay_id: str | None = None,
        history: Deposit | None = None,
        type_code: str | None = None,
    ) -> None:
        self.stay_id = stay_id
        self.history = history
        self.type_code = type_code

    def _fields(self) -> tuple[object, ...]:
        return (self.stay_id, self.history, self.type_code)

    def reaches_by_history(self, version: StayVersion) -> bool:
        """Whether a stay of this version may read the document as its history deposit."""
        deposit = self.history
        return (
            deposit is not None
            and version.patient_id == deposit.patient_id
            and history_candidate(deposit, version)
        )


NOWHERE: Final = DocumentReach()


def document_reach(doc: DocumentFacts | None) -> DocumentReach:
    """What this state of a document reaches (a copy: the facts merge in place)."""
    if doc is None:
        return NOWHERE
    deposit = doc.deposit
    source = deposit or doc.production  # DocumentFacts.type_code and stay_id, read once
    if source is None:
        return NOWHERE
    type_code = source.type_code
    stay_id = source.stay_id if type_code in STAY_DOCUMENT_TYPES else None
    history = deposit if deposit is not None and deposit.type_code in HISTORY_TYPE_CODES else None
    if stay_id is None and history is None:
        return NOWHERE
    return DocumentReach(stay_id, history, type_code if stay_id is not None else None)


def stay_reach(stay: StayFacts | None) -> StayVersion | None:
    """What the patient's other stays read of this one (rule 6): its version while active."""
    if stay is None or stay.version is None or not stay.active:
        return None
    return stay.version


def reaches_later_stay(earlier: StayVersion, later: StayVersion, lookback_days: int) -> bool:
    """Whether a stay of version `later` may read `earlier` to be a returning-patient stay."""
    return earlier.patient_id == later.patient_id and counts_as_earlier(
        earlier, later, lookback_days
    )
