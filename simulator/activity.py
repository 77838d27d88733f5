"""One establishment's activity: stays, their documents, DMP deposits and MSSanté messages.

`EstablishmentActivity.simulate_day(day)` admits the day's patients and hands every event the
stays will cause to a sink, each with the moment it is emitted, which may be weeks later (a
late deposit, a correction). Time arithmetic is done in UTC; timestamps are written in
Europe/Paris time, or UTC for establishments whose integration engine does so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from processors.catalogue import (
    BIOLOGY_REPORT,
    DISCHARGE_LETTER,
    DISCHARGE_PRESCRIPTION,
    IMAGING_REPORT,
    OPERATIVE_REPORT,
)
from processors.periods import PARIS
from simulator.config import SimulationConfig
from simulator.registry import EstablishmentProfile
from topics.records import (
    INS_STATUSES,
    QUALIFIED_INS,
    Attachment,
    Correspondent,
    DocumentDeleted,
    DocumentDeposited,
    DocumentDepositFailed,
    DocumentProduced,
    Event,
    MssSent,
    StayDischargeCancelled,
    StayDischarged,
)

# Emits one event at a UTC moment (when the producer sends it).
Sink = Callable[[datetime, Event], None]

MINUTE = 60
HOUR = 3600
DAY = 86400

STAY_KIND_WEIGHTS = {
    "hospitalisation_complete": 40,
    "hospitalisation_partielle": 22,
    "had": 4,
    "seance": 14,
    "urgence": 15,
    "consultation": 5,
}
_KINDS = tuple(STAY_KIND_WEIGHTS)
_KIND_CUMULATIVE = tuple(
    sum(list(STAY_KIND_WEIGHTS.values())[: i + 1]) for i in range(len(STAY_KIND_WEIGHTS))
)
# Stays that produce a discharge letter, prescriptions and reports (the default DS 1.x scope).
DOCUMENTED_KINDS = frozenset({"hospitalisation_complete", "hospitalisation_partielle", "had"})
SURGICAL_KINDS = frozenset({"hospitalisation_complete", "hospitalisation_partielle"})
UNQUALIFIED_INS = tuple(s for s in INS_STATUSES if s != QUALIFIED_INS)
FAILURE_REASONS = ("DMPClosed", "DMPNotFound", "INSNonQualifiee", "Timeout")
HISTORY_TYPE_CODES = (DISCHARGE_LETTER, DISCHARGE_LETTER, DISCHARGE_PRESCRIPTION)
MAX_PROBABILITY = 0.98
LOOKBACK = timedelta(days=330)  # returning patients come back within the DS 1.4 lookback
PAST_STAYS_KEPT = 5000  # per establishment: bounds memory when streaming forever


@dataclass(frozen=True, slots=True)
class PastStay:
    patient_id: str
    stay_id: str
    discharged_at: datetime
    ins_status: str


@dataclass(frozen=True, slots=True)
class Document:
    document_id: str
    type_code: str
    cda_level: int


class EstablishmentActivity:
    def __init__(
        self,
        profile: EstablishmentProfile,
        config: SimulationConfig,
        rng: random.Random,
        sink: Sink,
    ) -> None:
        self.profile = profile
        self.finess = profile.record.finess
        self.behaviour = config.behaviour
        self.mess = config.messiness
        self.stays_per_day = config.stays_per_day
        self.rng = rng
        self.sink = sink
        self._tz: tzinfo = UTC if profile.utc_timestamps else PARIS
        self._serial = 0
        self._past: list[PastStay] = []
        self._correspondents = self._correspondent_pool()
        maturity = profile.maturity
        # Unqualified identities shrink with maturity (identity vigilance work), never to 0.
        self._qualified_ins = min(0.99, max(0.0, 1 - (1 - self.behaviour.qualified_ins) / maturity))

    # --- helpers -----------------------------------------------------------------------------

    def p(self, base: float) -> float:
        """A send/deposit probability of this establishment: the base scaled by maturity."""
        return min(MAX_PROBABILITY, base * self.profile.maturity)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def seconds(self, low: float, high: float) -> timedelta:
        return timedelta(seconds=int(low + (high - low) * self.rng.random()))

    def count(self, mean: float) -> int:
        """A Poisson-like daily count around `mean`."""
        if mean <= 0:
            return 0
        return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))

    def ts(self, moment: datetime) -> datetime:
        return moment.astimezone(self._tz)

    def serial(self) -> int:
        self._serial += 1
        return self._serial

    def event_id(self) -> str:
        return f"{self.finess}-{self.rng.getrandbits(64):016x}"

    def emit(self, at: datetime, event: Event) -> None:
        self.sink(at, event)

    def _correspondent_pool(self) -> list[Correspondent]:
        # Large enough that a correspondent is named a few times a month, as with real GPs.
        size = max(40, int(self.stays_per_day * 20))
        pool = []
        for _ in range(size):
            rpps = f"10{self.rng.randrange(10**9):09d}"
            address = f"dr.{rpps[-7:]}@medecin.mssante.fr" if self.chance(0.75) else None
            pool.append(Correspondent(rpps, address))
        return pool

    # --- a day -------------------------------------------------------------------------------

    def day_start(self, day_index: int) -> datetime:
        """Midnight, Paris time, of the establishment's day `day_index`, as a UTC moment."""
        day = self.profile.origin + timedelta(days=day_index)
        return datetime.combine(day, time(), PARIS).astimezone(UTC)

    def simulate_day(self, day_index: int) -> None:
        midnight = self.day_start(day_index)
        for _ in range(self.count(self.stays_per_day)):
            kind = self._stay_kind()
            if kind == "urgence":
                admitted = midnight + self.seconds(0, DAY)
            else:
                admitted = midnight + self.seconds(7 * HOUR, 18 * HOUR)
            self._stay(kind, admitted)
        record = self.profile.record
        if record.has_lab:
            for _ in range(self.count(self.stays_per_day * 0.5)):
                self._outpatient_report(BIOLOGY_REPORT, self.behaviour.biology, midnight)
        if record.has_imaging:
            for _ in range(self.count(self.stays_per_day * 0.3)):
                self._outpatient_report(IMAGING_REPORT, self.behaviour.imaging, midnight)

    def _stay_kind(self) -> str:
        draw = self.rng.random() * _KIND_CUMULATIVE[-1]
        for kind, limit in zip(_KINDS, _KIND_CUMULATIVE, strict=True):
            if draw < limit:
                return kind
        return _KINDS[-1]

    def _length_of_stay(self, kind: str) -> timedelta:
        if kind == "hospitalisation_complete":
            nights = 1 + int(self.rng.expovariate(1 / 4))
            return timedelta(days=nights) + self.seconds(-4 * HOUR, 6 * HOUR)
        if kind == "had":
            return self.seconds(7 * DAY, 40 * DAY)
        if kind == "hospitalisation_partielle":
            return self.seconds(3 * HOUR, 10 * HOUR)
        if kind == "urgence":
            return self.seconds(2 * HOUR, 12 * HOUR)
        if kind == "seance":
            return self.seconds(1 * HOUR, 4 * HOUR)
        return self.seconds(20 * MINUTE, 60 * MINUTE)

    # --- patients ----------------------------------------------------------------------------

    def _patient(self, admitted: datetime) -> tuple[str, PastStay | None]:
        """A returning patient (with an earlier stay here, DS 1.4) or a new one."""
        if self._past and self.chance(self.behaviour.returning_patient):
            for _ in range(6):
                past = self._past[self.rng.randrange(len(self._past))]
                gap = admitted - past.discharged_at
                if timedelta(hours=1) < gap <= LOOKBACK:
                    return past.patient_id, past
        return f"IPP{self.serial():09d}", None

    def _remember(self, stay: PastStay) -> None:
        self._past.append(stay)
        if len(self._past) > 2 * PAST_STAYS_KEPT:
            del self._past[:PAST_STAYS_KEPT]

    def _ins_status(self, earlier: PastStay | None) -> str:
        if earlier is not None and earlier.ins_status == QUALIFIED_INS:
            return QUALIFIED_INS  # once qualified, an identity stays so
        if self.chance(self._qualified_ins):
            return QUALIFIED_INS
        return self.rng.choice(UNQUALIFIED_INS)

    # --- a stay ------------------------------------------------------------------------------

    def _stay(self, kind: str, admitted: datetime) -> None:
        b = self.behaviour
        discharged = admitted + self._length_of_stay(kind)
        patient_id, earlier = self._patient(admitted)
        ins = self._ins_status(earlier)
        surgical = kind in SURGICAL_KINDS and self.chance(b.surgical)
        opposition = self.chance(b.dmp_opposition)
        documented = kind in DOCUMENTED_KINDS
        named = self.rng.choice((0, 1, 1, 1, 2, 2, 3) if documented else (0, 0, 1))
        correspondents = tuple(self.rng.sample(self._correspondents, named))
        # The A03 usually follows the discharge within minutes; sometimes the ADT feed is
        # hours late and the DMP deposits of the stay arrive first.
        if self.chance(self.mess.delayed_discharge_event):
            sent = discharged + self.seconds(6 * HOUR, 48 * HOUR)
        else:
            sent = discharged + self.seconds(5 * MINUTE, 30 * MINUTE)
        stay = StayDischarged(
            type=StayDischarged.TYPE,
            event_id=self.event_id(),
            occurred_at=self.ts(sent),
            finess=self.finess,
            stay_id=f"NDA{self.serial():09d}",
            patient_id=patient_id,
            admitted_at=self.ts(admitted),
            discharged_at=self.ts(discharged),
            stay_kind=kind,
            ins_status=ins,
            surgical=surgical,
            deceased=kind == "hospitalisation_complete" and self.chance(b.deceased),
            dmp_opposition=opposition,
            correspondents=correspondents,
        )
        self.emit(sent, stay)
        self._revise(stay, sent, discharged)
        self._remember(PastStay(patient_id, stay.stay_id, discharged, ins))

        letter = None
        if documented or (kind == "urgence" and self.chance(0.2)):
            letter = self._stay_documents(stay, admitted, discharged, deposits=not opposition)
        if documented:
            self._messages(stay, discharged, letter)
        # DS 1.4: the history of a returning patient reaches the DMP during this stay.
        if earlier is not None and documented and not opposition and self.chance(self.p(b.history)):
            self._history_deposit(stay, earlier, admitted, discharged)

    def _revise(self, stay: StayDischarged, sent: datetime, discharged: datetime) -> None:
        """Corrections (a second A03) and cancellations (A13), some discharged again."""
        draw = self.rng.random()
        if draw < self.mess.correction:
            at = sent + self.seconds(1 * HOUR, 72 * HOUR)
            change = self.rng.randrange(3)
            if change == 0:
                fields: dict[str, Any] = {
                    "discharged_at": self.ts(discharged + self.seconds(1 * HOUR, 24 * HOUR))
                }
            elif change == 1:
                fields = {"ins_status": QUALIFIED_INS}  # identity qualified after discharge
            else:
                fields = {"correspondents": tuple(self.rng.sample(self._correspondents, 2))}
            self.emit(
                at,
                replace(stay, event_id=self.event_id(), occurred_at=self.ts(at), **fields),
            )
        elif draw < self.mess.correction + self.mess.cancellation:
            at = sent + self.seconds(1 * HOUR, 48 * HOUR)
            self.emit(
                at,
                StayDischargeCancelled(
                    type=StayDischargeCancelled.TYPE,
                    event_id=self.event_id(),
                    occurred_at=self.ts(at),
                    finess=self.finess,
                    stay_id=stay.stay_id,
                ),
            )
            if self.chance(0.4):  # the cancellation was a mistake: discharged again
                again = at + self.seconds(1 * HOUR, 24 * HOUR)
                self.emit(
                    again, replace(stay, event_id=self.event_id(), occurred_at=self.ts(again))
                )

    def _stay_documents(
        self, stay: StayDischarged, admitted: datetime, discharged: datetime, deposits: bool
    ) -> Document | None:
        """Letter, prescription, operative report, biology and imaging reports of a stay."""
        b = self.behaviour
        length = (discharged - admitted).total_seconds()

        def during() -> datetime:
            return admitted + timedelta(seconds=int(length * self.rng.uniform(0.1, 0.9)))

        def deposit(base: float) -> float:
            return self.p(base) if deposits else 0.0  # DMP opposition: nothing is sent

        letter = None
        if self.chance(0.95):
            written = max(admitted, discharged - self.seconds(0, 2 * HOUR))
            letter = self._document(
                DISCHARGE_LETTER, stay, written, deposit(b.discharge_letter), discharged
            )
        if stay.stay_kind not in DOCUMENTED_KINDS:
            return letter
        if self.chance(b.prescription_written):
            written = max(admitted, discharged - self.seconds(0, 3 * HOUR))
            self._document(
                DISCHARGE_PRESCRIPTION, stay, written, deposit(b.prescription), discharged
            )
        if stay.surgical:
            self._document(
                OPERATIVE_REPORT, stay, during(), deposit(b.operative_report), discharged
            )
        if self.profile.record.has_lab:
            for _ in range(self.rng.choice((0, 1, 1, 2, 3))):
                produced = during()
                self._document(BIOLOGY_REPORT, stay, produced, deposit(b.biology), produced)
        if self.profile.record.has_imaging and self.chance(0.4):
            produced = during()
            self._document(IMAGING_REPORT, stay, produced, deposit(b.imaging), produced)
        return letter

    def _outpatient_report(self, type_code: str, base: float, midnight: datetime) -> None:
        produced = midnight + self.seconds(7 * HOUR, 20 * HOUR)
        patient_id, earlier = self._patient(produced)
        self._document(
            type_code,
            None,
            produced,
            self.p(base),
            produced,
            patient_id=patient_id,
            ins=self._ins_status(earlier),
        )

    # --- documents and the DMP ---------------------------------------------------------------

    def _document(
        self,
        type_code: str,
        stay: StayDischarged | None,
        produced: datetime,
        p_deposit: float,
        late_from: datetime,
        *,
        patient_id: str = "",
        ins: str = "",
    ) -> Document:
        """A document's life: produced, maybe deposited (late, refused, replaced, deleted)."""
        document = Document(
            f"DOC-{self.finess}-{self.serial():09d}",
            type_code,
            3 if self.chance(self.behaviour.cda_level_3) else 1,
        )
        patient_id = stay.patient_id if stay is not None else patient_id
        ins = stay.ins_status if stay is not None else ins
        stay_id = stay.stay_id if stay is not None else None
        # A deposit implies production: some producers never send document.produced.
        if self.chance(0.92):
            at = produced + self.seconds(0, 5 * MINUTE)
            self.emit(
                at,
                DocumentProduced(
                    type=DocumentProduced.TYPE,
                    event_id=self.event_id(),
                    occurred_at=self.ts(at),
                    finess=self.finess,
                    document_id=document.document_id,
                    type_code=type_code,
                    patient_id=patient_id,
                    produced_at=self.ts(produced),
                    stay_id=stay_id,
                ),
            )
        if not self.chance(p_deposit):
            return document
        deposited = produced + self.seconds(10 * MINUTE, 6 * HOUR)
        if self.chance(self.mess.late_deposit):
            deposited = late_from + self.seconds(14 * DAY, 56 * DAY)  # some beyond the grace
        if self.chance(self.mess.deposit_failure):
            self._deposit_failed(document.document_id, deposited)
            if self.chance(0.5):
                return document  # never retried
            deposited += self.seconds(1 * HOUR, 72 * HOUR)
        event = DocumentDeposited(
            type=DocumentDeposited.TYPE,
            event_id=self.event_id(),
            occurred_at=self.ts(deposited),
            finess=self.finess,
            document_id=document.document_id,
            type_code=type_code,
            patient_id=patient_id,
            cda_level=document.cda_level,
            ins_status=ins,
            produced_at=self.ts(produced),
            deposited_at=self.ts(deposited),
            stay_id=stay_id,
        )
        self.emit(deposited, event)
        draw = self.rng.random()
        if draw < self.mess.replacement:
            self._replace(event, deposited)
        elif draw < self.mess.replacement + self.mess.deletion:
            at = deposited + self.seconds(1 * DAY, 20 * DAY)
            self.emit(
                at,
                DocumentDeleted(
                    type=DocumentDeleted.TYPE,
                    event_id=self.event_id(),
                    occurred_at=self.ts(at),
                    finess=self.finess,
                    document_id=document.document_id,
                ),
            )
        return document

    def _deposit_failed(self, document_id: str, at: datetime) -> None:
        self.emit(
            at,
            DocumentDepositFailed(
                type=DocumentDepositFailed.TYPE,
                event_id=self.event_id(),
                occurred_at=self.ts(at),
                finess=self.finess,
                document_id=document_id,
                reason=self.rng.choice(FAILURE_REASONS),
            ),
        )

    def _replace(self, original: DocumentDeposited, deposited: datetime) -> None:
        """A corrected version (MDM^T10): a new document that stands in for the original."""
        produced = deposited + self.seconds(2 * HOUR, 10 * DAY)
        sent = produced + self.seconds(10 * MINUTE, 6 * HOUR)
        new_id = f"DOC-{self.finess}-{self.serial():09d}"
        self.emit(
            produced,
            DocumentProduced(
                type=DocumentProduced.TYPE,
                event_id=self.event_id(),
                occurred_at=self.ts(produced),
                finess=self.finess,
                document_id=new_id,
                type_code=original.type_code,
                patient_id=original.patient_id,
                produced_at=self.ts(produced),
                stay_id=original.stay_id,
            ),
        )
        self.emit(
            sent,
            replace(
                original,
                event_id=self.event_id(),
                occurred_at=self.ts(sent),
                document_id=new_id,
                produced_at=self.ts(produced),
                deposited_at=self.ts(sent),
                replaces=original.document_id,
            ),
        )

    def _history_deposit(
        self, stay: StayDischarged, earlier: PastStay, admitted: datetime, discharged: datetime
    ) -> None:
        """DS 1.4: during a returning patient's stay, a document of an earlier stay (produced
        before this admission) is deposited in the DMP."""
        produced = earlier.discharged_at - self.seconds(0, 2 * HOUR)
        length = (discharged - admitted).total_seconds()
        deposited = admitted + timedelta(seconds=int(length * self.rng.uniform(0.05, 0.95)))
        at = max(deposited, admitted + timedelta(seconds=1))
        self.emit(
            at,
            DocumentDeposited(
                type=DocumentDeposited.TYPE,
                event_id=self.event_id(),
                occurred_at=self.ts(at),
                finess=self.finess,
                document_id=f"DOC-{self.finess}-{self.serial():09d}",
                type_code=self.rng.choice(HISTORY_TYPE_CODES),
                patient_id=stay.patient_id,
                cda_level=3 if self.chance(self.behaviour.cda_level_3) else 1,
                ins_status=stay.ins_status,
                produced_at=self.ts(produced),
                deposited_at=self.ts(at),
                stay_id=earlier.stay_id,
            ),
        )

    # --- MSSanté -------------------------------------------------------------------------------

    def _messages(
        self, stay: StayDischarged, discharged: datetime, letter: Document | None
    ) -> None:
        b = self.behaviour
        for correspondent in stay.correspondents:
            if correspondent.mss_address is None or not self.chance(self.p(b.mss_pro)):
                continue
            sent = discharged + self.seconds(1 * HOUR, 72 * HOUR)
            attachments: tuple[Attachment, ...] = ()
            if letter is not None:
                # One in ten is a plain PDF, not a CDA-R2 document: it does not count.
                level = None if self.chance(0.1) else letter.cda_level
                attachments = (
                    Attachment(letter.document_id, letter.type_code, stay.ins_status, level),
                )
            self._mss(stay, "pro", correspondent.rpps, sent, attachments, stay.stay_id)
        if self.chance(self.p(b.mss_citoyenne)):
            sent = discharged + self.seconds(10 * MINUTE, 10 * DAY)
            attachments = ()
            if letter is not None and self.chance(0.5):
                attachments = (
                    Attachment(letter.document_id, letter.type_code, stay.ins_status, 1),
                )
            # Some messages are not linked to their stay: DS 4.2 cannot count them.
            stay_id = None if self.chance(0.05) else stay.stay_id
            address = f"{stay.patient_id.lower()}@patient.mssante.fr"
            self._mss(stay, "citoyenne", address, sent, attachments, stay_id)

    def _mss(
        self,
        stay: StayDischarged,
        channel: str,
        recipient: str,
        sent: datetime,
        attachments: tuple[Attachment, ...],
        stay_id: str | None,
    ) -> None:
        self.emit(
            sent,
            MssSent(
                type=MssSent.TYPE,
                event_id=self.event_id(),
                occurred_at=self.ts(sent),
                finess=self.finess,
                message_id=f"MSG-{self.finess}-{self.serial():09d}",
                channel=channel,
                patient_id=stay.patient_id,
                recipient=recipient,
                sent_at=self.ts(sent),
                stay_id=stay_id,
                attachments=attachments,
            ),
        )
