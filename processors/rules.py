"""The counting rules of SPEC.md (rules 4–9), as pure functions over an establishment's facts.

For each unit — a stay, a report (DS 2.1/3.1), a correspondent (DS 4.1) — the rules give its
*outcome* per indicator (processors.units.Outcome: counted, or the one reason it is not) and
derive from it the unit's *contribution* to the establishment's aggregates
(processors.aggregates): counts under monthly keys, the uncounted ones by reason and deadline.
How months add up to a funding window, and how DS 4.1 is counted from its correspondents, is
in processors.figures. Every counting rule of SPEC.md lives here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Protocol

from processors.aggregates import (
    DENOMINATOR,
    NAMED,
    NUMERATOR,
    OTHER_IN_GRACE,
    OTHER_SENT,
    SENT,
    SENT_IN_GRACE,
    Contribution,
    DischargeDay,
    EventDay,
    PeopleKey,
    RateKey,
    UnitKey,
    people_key,
    unit_key,
)
from processors.catalogue import (
    HISTORY_TYPE_CODES,
    REPORT_INDICATORS,
    STAY_DOCUMENT_INDICATORS,
)
from processors.facts import Deposit, DocumentFacts, RecipientFacts, StayFacts, StayVersion
from processors.periods import month_bounds, month_key, paris_date
from processors.settings import Settings
from processors.units import (
    CDA_LEVEL,
    DELETED,
    DEPOSIT_FAILED,
    DEPOSITED_LATE,
    INS_NOT_QUALIFIED,
    MESSAGE_LATE,
    NO_DOCUMENT,
    NO_HISTORY_DEPOSIT,
    NO_MESSAGE,
    NO_QUALIFYING_ATTACHMENT,
    NOT_DEPOSITED,
    REPLACED_BY_NON_QUALIFYING,
    Outcome,
    best,
)
from topics.records import CDA_LEVELS, QUALIFIED_INS, MssSent


class Facts(Protocol):
    """What the rules read of an establishment (see processors.establishment)."""

    settings: Settings

    def documents_of_stay(self, stay_id: str) -> Iterable[DocumentFacts]: ...
    def documents_of_patient(self, patient_id: str) -> Iterable[DocumentFacts]: ...
    def stays_of_patient(self, patient_id: str) -> Iterable[StayFacts]: ...
    def replacements(self, document_id: str) -> Iterable[str]: ...


# Outcomes are immutable: the reason-only ones are shared, the counted ones made once a day.
_NOT_DEPOSITED: Final = Outcome(NOT_DEPOSITED)
_NO_DOCUMENT: Final = Outcome(NO_DOCUMENT)
_NO_HISTORY_DEPOSIT: Final = Outcome(NO_HISTORY_DEPOSIT)
_NO_MESSAGE: Final = Outcome(NO_MESSAGE)
_COUNTED: Final[dict[date, Outcome]] = {}


def _counted(day: date) -> Outcome:
    outcome = _COUNTED.get(day)
    if outcome is None:
        outcome = _COUNTED[day] = Outcome(None, None, day)
    return outcome


def standing(doc: DocumentFacts, facts: Facts) -> Outcome:
    """Rules 4, 5: is the document in the DMP, qualified, not deleted, not replaced? Counted
    (with its deposit day), or why not."""
    deposit = doc.deposit
    if deposit is None:
        if doc.failure is not None:
            return Outcome(DEPOSIT_FAILED, doc.failure.reason)
        return _NOT_DEPOSITED
    day = deposit.deposited_day
    if deposit.ins_status != QUALIFIED_INS:
        return Outcome(INS_NOT_QUALIFIED, f"INS {deposit.ins_status} when sent", day)
    if deposit.cda_level not in CDA_LEVELS:
        return Outcome(CDA_LEVEL, f"CDA-R2 level {deposit.cda_level}", day)
    if doc.deleted:
        return Outcome(DELETED, None, day)
    replacements = sorted(facts.replacements(doc.document_id))
    if replacements:
        return Outcome(REPLACED_BY_NON_QUALIFYING, f"replaced by {', '.join(replacements)}", day)
    return _counted(day)


def counts_for_stay(doc: DocumentFacts, facts: Facts) -> bool:
    """A deposit still standing: acknowledged, qualified, not deleted, not replaced (4, 5)."""
    return standing(doc, facts).counted


def _in_time(outcome: Outcome, deadline: date, late: str = DEPOSITED_LATE) -> Outcome:
    """A counted outcome whose day is after the deadline (reference + grace) is late."""
    if outcome.counted and outcome.day is not None and outcome.day > deadline:
        return Outcome(late, f"{(outcome.day - deadline).days} days late", outcome.day)
    return outcome


def grace_end(day: date, settings: Settings) -> date:
    """The last day a document or message still counts for a unit of that reference day."""
    key = (day, settings.grace_days)
    end = _GRACE_ENDS.get(key)
    if end is None:  # once per day and grace setting (a few hundred a year)
        end = _GRACE_ENDS[key] = day + timedelta(days=settings.grace_days)
    return end


_GRACE_ENDS: Final[dict[tuple[date, int], date]] = {}


def _excluded(version: StayVersion, settings: Settings) -> bool:
    """The exclusions from DS 1.x denominators (settings, default off)."""
    return (
        (settings.exclude_dmp_opposition and version.dmp_opposition)
        or (settings.exclude_deceased and version.deceased)
        or (settings.exclude_unqualified_ins and version.ins_status != QUALIFIED_INS)
    )


def _stay_document_outcomes(
    stay: StayFacts, version: StayVersion, facts: Facts, only: frozenset[str] | None = None
) -> dict[str, Outcome]:
    """Rule 4: per type code (of `only`, or every one), the best outcome of the stay's
    documents of that type."""
    deadline = grace_end(version.discharge_day, facts.settings)
    candidates: dict[str, list[tuple[Outcome, str]]] = {}
    for doc in facts.documents_of_stay(stay.stay_id):
        type_code = doc.type_code
        if type_code is None or (only is not None and type_code not in only):
            continue
        outcome = _in_time(standing(doc, facts), deadline)
        candidates.setdefault(type_code, []).append((outcome, doc.document_id))
    outcomes = {}
    for code, found in candidates.items():
        chosen = best(found)
        if chosen is not None:
            outcomes[code] = chosen
    return outcomes


def is_returning(stay: StayFacts, version: StayVersion, facts: Facts) -> bool:
    """Rule 6: another active stay of the patient discharged before this admission, within
    lookback_days (Paris calendar days)."""
    lookback_days = facts.settings.lookback_days
    for other in facts.stays_of_patient(version.patient_id):
        earlier = other.version
        if other.stay_id == stay.stay_id or earlier is None or not other.active:
            continue
        if counts_as_earlier(earlier, version, lookback_days):
            return True
    return False


def counts_as_earlier(earlier: StayVersion, version: StayVersion, lookback_days: int) -> bool:
    """Rule 6: `earlier` was discharged before this admission, within lookback_days (Paris
    calendar days). processors.reach reads it too: one definition."""
    return earlier.discharged_at < version.admitted_at and (
        (version.admission_day - earlier.discharge_day).days <= lookback_days
    )


def history_outcome(version: StayVersion, facts: Facts) -> Outcome:
    """Rule 6: counted with a qualifying deposit for the patient, produced before the
    admission and deposited between the admission and discharge + grace."""
    deadline = grace_end(version.discharge_day, facts.settings)
    candidates = []
    for doc in facts.documents_of_patient(version.patient_id):
        deposit = doc.deposit
        if (
            deposit is not None
            and deposit.type_code in HISTORY_TYPE_CODES
            and history_candidate(deposit, version)
        ):
            candidates.append((_in_time(standing(doc, facts), deadline), doc.document_id))
    return best(candidates) or _NO_HISTORY_DEPOSIT


def history_candidate(deposit: Deposit, version: StayVersion) -> bool:
    """Rule 6: a deposit of the patient's history for this stay: produced before its
    admission, deposited after it (processors.reach reads it too)."""
    return deposit.produced_at < version.admitted_at <= deposit.deposited_at


def has_history_deposit(version: StayVersion, facts: Facts) -> bool:
    return history_outcome(version, facts).counted


def _citizen_outcome(stay: StayFacts, version: StayVersion, settings: Settings) -> Outcome:
    """Rule 9: an MSS citoyenne message naming the stay, sent by discharge + grace (the
    earliest message decides: counted, or late)."""
    if not stay.citizen_messages:
        return _NO_MESSAGE
    first = paris_date(min(stay.citizen_messages.values()))
    deadline = grace_end(version.discharge_day, settings)
    return _in_time(_counted(first), deadline, MESSAGE_LATE)


def _in_scope(stay: StayFacts, settings: Settings) -> StayVersion | None:
    """The stay's version when it is in some denominator: active and in scope."""
    version = stay.version
    if version is None or not stay.active or version.stay_kind not in settings.stay_scope:
        return None
    return version


# A stay's indicators, in the order of stay_outcomes (and of its contribution's keys).
STAY_INDICATORS: Final = (*STAY_DOCUMENT_INDICATORS, "DS1.4", "DS4.2")
_STAY_RANKS: Final = {indicator: rank for rank, indicator in enumerate(STAY_INDICATORS)}


def stay_outcomes(stay: StayFacts, facts: Facts) -> dict[str, Outcome]:
    """The stay's outcome for each indicator whose denominator it is in (none when it is
    cancelled or out of scope): DS 1.1, 1.2, 1.3, 1.4 and 4.2."""
    settings = facts.settings
    version = _in_scope(stay, settings)
    if version is None:
        return {}
    outcomes: dict[str, Outcome] = {}
    if not _excluded(version, settings):
        documents = _stay_document_outcomes(stay, version, facts)
        for indicator, type_code in STAY_DOCUMENT_INDICATORS.items():
            if indicator == "DS1.3" and not version.surgical:
                continue
            outcomes[indicator] = documents.get(type_code) or _NO_DOCUMENT
        if is_returning(stay, version, facts):
            outcomes["DS1.4"] = history_outcome(version, facts)
    outcomes["DS4.2"] = _citizen_outcome(stay, version, settings)
    return outcomes


_EVENT_DAYS: Final[dict[str, EventDay]] = {}  # made once per day, not on every unit (~1k a year)


def _event_day(day: str) -> EventDay:
    key = _EVENT_DAYS.get(day)
    if key is None:
        key = _EVENT_DAYS[day] = EventDay(day)
    return key


# The same keys by date, and each day's month: no isoformat() or format per unit.
_EVENT_DATES: Final[dict[date, EventDay]] = {}
_DISCHARGE_DATES: Final[dict[date, DischargeDay]] = {}
_MONTHS: Final[dict[date, str]] = {}


def _event_date(day: date) -> EventDay:
    key = _EVENT_DATES.get(day)
    if key is None:
        key = _EVENT_DATES[day] = _event_day(day.isoformat())
    return key


def _discharge_date(day: date) -> DischargeDay:
    key = _DISCHARGE_DATES.get(day)
    if key is None:
        key = _DISCHARGE_DATES[day] = DischargeDay(day.isoformat())
    return key


def _iso(day: date) -> str:
    """A deadline's text, made once per day (isoformat costs ~3k instructions a call)."""
    text = _ISO_DATES.get(day)
    if text is None:
        text = _ISO_DATES[day] = day.isoformat()
    return text


_ISO_DATES: Final[dict[date, str]] = {}


def _month(day: date) -> str:
    month = _MONTHS.get(day)
    if month is None:
        month = _MONTHS[day] = month_key(day)
    return month


# (indicator, month) → its denominator and numerator keys: made once, not on every unit.
_RATE_PAIRS: Final[dict[tuple[str, str], tuple[RateKey, RateKey]]] = {}


def _rate_pair(indicator: str, month: str) -> tuple[RateKey, RateKey]:
    pair = _RATE_PAIRS.get((indicator, month))
    if pair is None:  # a few dozen per year of history
        pair = RateKey(DENOMINATOR, indicator, month), RateKey(NUMERATOR, indicator, month)
        _RATE_PAIRS[indicator, month] = pair
    return pair


def _rate_keys(
    contribution: Contribution, indicator: str, month: str, outcome: Outcome, deadline: str
) -> None:
    pair = _rate_pair(indicator, month)
    contribution[pair[0]] = 1
    if outcome.reason is None:
        contribution[pair[1]] = 1
    else:
        contribution[unit_key(indicator, month, outcome.reason, deadline)] = 1


def _latest_day(stay: StayFacts, version: StayVersion) -> date:
    """The Paris day of the stay's latest fact: its discharge or a citizen message."""
    if not stay.citizen_messages:
        return version.discharge_day
    latest = max([version.discharged_at, *stay.citizen_messages.values()])
    return paris_date(latest)


def stay_contribution(stay: StayFacts, facts: Facts) -> Contribution:
    """DS 1.1, 1.2, 1.3, 1.4, 4.1 (denominator side) and 4.2 for one stay."""
    version = stay.version
    if version is None:
        return {}
    # The watermark counts every current version (SPEC); `now` every fact's day.
    contribution: Contribution = {
        _discharge_date(version.discharge_day): 1,
        _event_date(_latest_day(stay, version)): 1,
    }
    outcomes = stay_outcomes(stay, facts)
    if not outcomes:
        return contribution
    month = _month(version.discharge_day)
    deadline = _iso(grace_end(version.discharge_day, facts.settings))
    for indicator, outcome in outcomes.items():
        _rate_keys(contribution, indicator, month, outcome, deadline)
    for rpps, address in version.correspondents:
        if address:  # rule 8: only MSS-equipped correspondents
            contribution[people_key(NAMED, month, rpps)] = 1
    return contribution


def stay_contribution_update(
    stay: StayFacts,
    stored: Contribution,
    facts: Facts,
    type_codes: frozenset[str] = frozenset(),
    history: bool = False,
    returning: bool = False,
    messages: bool = False,
) -> Contribution:
    """`stay_contribution`, when only some of what the stay reads changed: its documents of
    `type_codes` (DS 1.1–1.3), the patient's history deposits (`history`: DS 1.4's outcome),
    the patient's other stays (`returning`: whether it is in DS 1.4 at all), its own MSS
    citoyenne messages (`messages`: DS 4.2 and its latest day). Only those keys are derived
    again; every other is the stored contribution's, which what did not change still gives
    (processors.reach says which stays a change reaches, and with what)."""
    version = stay.version
    if version is None or not stored:
        return stay_contribution(stay, facts)  # nothing stored to keep: derive it all
    settings = facts.settings
    in_scope = _in_scope(stay, settings) is not None
    month = _month(version.discharge_day)
    indicators: set[str] = set()
    outcomes: dict[str, Outcome] = {}
    if in_scope and not _excluded(version, settings):  # in the DS 1.x denominators
        indicators = {
            indicator
            for indicator, type_code in STAY_DOCUMENT_INDICATORS.items()
            if type_code in type_codes and (indicator != "DS1.3" or version.surgical)
        }
        if returning:
            indicators.add("DS1.4")
            if is_returning(stay, version, facts):
                outcomes["DS1.4"] = history_outcome(version, facts)
        elif history and _rate_pair("DS1.4", month)[0] in stored:
            indicators.add("DS1.4")
            outcomes["DS1.4"] = history_outcome(version, facts)
        codes = frozenset(STAY_DOCUMENT_INDICATORS[i] for i in indicators if i != "DS1.4")
        if codes:
            documents = _stay_document_outcomes(stay, version, facts, codes)
            for indicator in indicators - {"DS1.4"}:
                type_code = STAY_DOCUMENT_INDICATORS[indicator]
                outcomes[indicator] = documents.get(type_code) or _NO_DOCUMENT
    if messages and in_scope:
        indicators.add("DS4.2")
        outcomes["DS4.2"] = _citizen_outcome(stay, version, settings)
    if not indicators and not messages:
        return stored
    latest = _event_date(_latest_day(stay, version)) if messages else None
    # The keys in stay_contribution's order (its bytes are the same): the new indicators'
    # keys where theirs were, among the stored ones kept; the people keys last.
    deadline = _iso(grace_end(version.discharge_day, settings))
    pending = sorted(outcomes, key=_STAY_RANKS.__getitem__)
    contribution: Contribution = {}
    for key, value in stored.items():
        # A tuple, not RateKey | UnitKey: that makes a union type per key, and checks it in
        # Python (~700 instructions).
        if isinstance(key, (RateKey, UnitKey)):
            indicator = key.indicator
            if indicator in indicators:
                continue
            rank = _STAY_RANKS[indicator]
            while pending and _STAY_RANKS[pending[0]] < rank:
                indicator = pending.pop(0)
                _rate_keys(contribution, indicator, month, outcomes[indicator], deadline)
        elif isinstance(key, PeopleKey):
            for indicator in pending:
                _rate_keys(contribution, indicator, month, outcomes[indicator], deadline)
            pending = []
        elif isinstance(key, EventDay) and latest is not None:
            contribution[latest] = value
            continue
        contribution[key] = value
    for indicator in pending:
        _rate_keys(contribution, indicator, month, outcomes[indicator], deadline)
    return contribution


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """Rule 7: one biology or imaging report (a replacement chain) and its outcome."""

    indicator: str
    first: DocumentFacts  # the earliest-produced version: the report's type, period, id
    produced_day: date
    deadline: date  # the latest version's production + grace
    outcome: Outcome


def report_outcome(chain: list[DocumentFacts], facts: Facts) -> ReportOutcome | None:
    """Rule 7: one biology or imaging report, all its versions (replacements) together.

    The report's type and period are those of its earliest-produced version; it counts when a
    current (not replaced) version is a qualifying deposit of that type, not deleted, deposited
    no later than its own production + grace.
    """
    for doc in chain:
        if doc.type_code in REPORT_INDICATORS:
            break
    else:
        return None  # the usual case: a stay's document
    dated = [(doc.produced_at, doc.document_id, doc) for doc in chain if doc.produced_at]
    if not dated:
        return None
    _, _, first = min(dated, key=lambda item: (item[0], item[1]))
    type_code = first.type_code
    indicator = REPORT_INDICATORS.get(type_code or "")
    if indicator is None:
        return None
    candidates = []
    for _, document_id, doc in dated:
        deposit = doc.deposit
        if deposit is not None and deposit.type_code != type_code:
            outcome = Outcome(
                NO_DOCUMENT, f"deposited as {deposit.type_code}", deposit.deposited_day
            )
        else:
            reference = _produced_day(doc)
            outcome = _in_time(standing(doc, facts), grace_end(reference, facts.settings))
        candidates.append((outcome, document_id))
    latest = max(_produced_day(doc) for _, _, doc in dated)
    outcome = best(candidates) or _NO_DOCUMENT
    return ReportOutcome(
        indicator,
        first,
        _produced_day(first),
        grace_end(latest, facts.settings),
        outcome,
    )


def _latest_document_day(chain: list[DocumentFacts]) -> date | None:
    """The latest of the chain's `DocumentFacts.days()`, without listing them."""
    latest: date | None = None
    for doc in chain:
        production, deposit = doc.production, doc.deposit
        if production is not None and (latest is None or production.produced_day > latest):
            latest = production.produced_day
        if deposit is not None:
            day = max(deposit.produced_day, deposit.deposited_day)
            if latest is None or day > latest:
                latest = day
    return latest


def _produced_day(doc: DocumentFacts) -> date:
    """The Paris day of a dated document's `produced_at` (report_outcome keeps only those)."""
    day = doc.produced_day
    assert day is not None
    return day


def report_contribution(chain: list[DocumentFacts], facts: Facts) -> Contribution:
    """A document chain's days (for `now`), and rule 7's counts when it is a report."""
    latest = _latest_document_day(chain)
    contribution: Contribution = {} if latest is None else {_event_date(latest): 1}
    if len(chain) == 1:  # the usual case: report_outcome of one version, written out
        doc = chain[0]
        indicator = REPORT_INDICATORS.get(doc.type_code or "")
        day = doc.produced_day
        if indicator is not None and day is not None:
            # Its deposit, if any, has its type: a single version is its own first.
            end = grace_end(day, facts.settings)
            outcome = _in_time(standing(doc, facts), end)
            _rate_keys(contribution, indicator, _month(day), outcome, _iso(end))
        return contribution
    report = report_outcome(chain, facts)
    if report is not None:
        month = _month(report.produced_day)
        deadline = _iso(report.deadline)
        _rate_keys(contribution, report.indicator, month, report.outcome, deadline)
    return contribution


def _reached_months(
    contribution: Contribution, days: Iterable[date], rpps: str, roles: tuple[str, str],
    settings: Settings,
) -> None:  # fmt: skip
    """A message sent on day d: d's month (roles[0]), and every earlier month whose end +
    grace is on or after d (roles[1])."""
    grace_days = settings.grace_days
    for day in days:
        month, earlier_months = _months_reached(day, grace_days)
        contribution[people_key(roles[0], month, rpps)] = 1
        for earlier in earlier_months:
            contribution[people_key(roles[1], earlier, rpps)] = 1


# (day, grace) → the day's month and the earlier months it reaches: a correspondent's every
# message is read again on each new one, so each day's months are worked out once.
_MONTHS_REACHED: Final[dict[tuple[date, int], tuple[str, tuple[str, ...]]]] = {}


def _months_reached(day: date, grace_days: int) -> tuple[str, tuple[str, ...]]:
    """Day d's month, and every earlier month whose end + grace is on or after d."""
    key = (day, grace_days)
    found = _MONTHS_REACHED.get(key)
    if found is None:  # once per day and grace setting (a few hundred a year)
        month = month_key(day)
        earlier = month_key(day - timedelta(days=grace_days))
        earlier_months = []
        while earlier < month:
            earlier_months.append(earlier)
            earlier = month_key(month_bounds(earlier)[1] + timedelta(days=1))
        found = _MONTHS_REACHED[key] = (month, tuple(earlier_months))
    return found


def recipient_contribution(recipient: RecipientFacts, settings: Settings) -> Contribution:
    """Rule 8, numerator side: the months a correspondent was reached in. A qualifying message
    sent on day d reaches it for d's month, and for every earlier month whose end + grace is
    on or after d (SENT_IN_GRACE: the window's last month uses it too). Other messages are
    kept the same way (OTHER_SENT, OTHER_IN_GRACE): they only explain a correspondent not
    reached."""
    contribution: Contribution = {}
    rpps = recipient.rpps
    qualifying, others = recipient.qualifying_messages.values(), recipient.other_messages.values()
    _reached_months(contribution, qualifying, rpps, (SENT, SENT_IN_GRACE), settings)
    _reached_months(contribution, others, rpps, (OTHER_SENT, OTHER_IN_GRACE), settings)
    days = [*qualifying, *others]
    if days:
        contribution[_event_date(max(days))] = 1
    return contribution


def qualifying_pro_message(message: MssSent) -> bool:
    """Rule 8: an MSS Pro message carrying a CDA-R2 document (level 1 or 3), qualified INS."""
    return message.channel == "pro" and any(
        a.cda_level in (1, 3) and a.ins_status == QUALIFIED_INS for a in message.attachments
    )


@dataclass(frozen=True, slots=True)
class Correspondents:
    """Rule 8 for one period (a month or a window), from the aggregates' people keys."""

    named: set[str]  # D: equipped correspondents named on the period's stays
    sent: set[str]  # qualifying messages sent in the period
    sent_in_grace: set[str]  # ... after its end, within grace
    other: set[str]  # messages without a qualifying attachment, in the period + grace
    sent_after: set[str]  # qualifying messages sent after the period's end + grace at best

    def outcome(self, rpps: str) -> Outcome:
        """Counted (in N), or why not, for one correspondent of D."""
        if rpps in self.sent or rpps in self.sent_in_grace:
            return Outcome()
        if rpps in self.other:
            return Outcome(NO_QUALIFYING_ATTACHMENT)
        if rpps in self.sent_after:
            return Outcome(MESSAGE_LATE)
        return Outcome(NO_MESSAGE)


def correspondents_reached(
    named: set[str], sent: set[str], sent_in_grace: set[str]
) -> tuple[int, int]:
    """Rule 8 for one period: (N, D). D = the distinct equipped correspondents named on the
    period's stays; N = those of D sent a qualifying message in the period or within grace
    after its end."""
    return len(named & (sent | sent_in_grace)), len(named)
