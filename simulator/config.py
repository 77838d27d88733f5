"""The simulator's knobs: volumes, dates, behaviour probabilities and how messy the feed is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from topics.records import WINDOWS

# Windows handed out in turn when none are given: the first two establishments (the one under
# target and the one above) get windows that set a target for every indicator.
DEFAULT_WINDOW_SPREAD = ("F2", "F3", "F4", "F1")


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How an establishment of maturity 1.0 behaves; maturity scales the send probabilities.

    Tuned so that maturity 1.0 lands near the SUN-ES targets (DS 1.1 ~ 55–60 %,
    DS 1.2 ~ 50 %...), once the unqualified INS, late, deleted and replaced documents are
    taken out.
    """

    qualified_ins: float = 0.88  # stays whose patient has a qualified INS
    discharge_letter: float = 0.72  # letter produced → deposited in the DMP
    prescription_written: float = 0.75  # stays with a discharge prescription
    prescription: float = 0.78  # prescription written → deposited
    surgical: float = 0.3  # full or day hospitalisations that are surgical
    operative_report: float = 0.75  # surgical stay → operative report deposited
    biology: float = 0.62  # biology report → deposited
    imaging: float = 0.58  # imaging report → deposited
    mss_pro: float = 0.45  # per stay and MSS-equipped correspondent → MSS Pro message
    mss_citoyenne: float = 0.6  # stay in scope → MSS citoyenne message to the patient
    returning_patient: float = 0.25  # stays of a patient seen before at the same FINESS
    history: float = 0.65  # returning stay → a document of an earlier stay reaches the DMP
    cda_level_3: float = 0.25  # deposits structured at level 3 (else level 1)
    dmp_opposition: float = 0.02
    deceased: float = 0.01  # of full hospitalisations


@dataclass(frozen=True, slots=True)
class Messiness:
    """What makes a real feed hard: each is a probability per message, stay or document."""

    invalid_fraction: float = 0.01  # of all messages: broken bytes (dead-letter path)
    duplicate_fraction: float = 0.02  # of valid events: re-sent with the same event_id
    late_deposit: float = 0.06  # of deposits: 2 to 8 weeks after discharge / production
    delayed_discharge_event: float = 0.05  # of stays: the A03 arrives after the documents
    correction: float = 0.03  # of stays: a second stay.discharged, later occurred_at
    cancellation: float = 0.01  # of stays: stay.discharge_cancelled (some discharged again)
    replacement: float = 0.03  # of deposits: a new version with `replaces`
    deletion: float = 0.01  # of deposits: document.deleted
    deposit_failure: float = 0.03  # of deposits: refused first (some retried)
    reorder_window: int = 32  # messages may leave their chronological place by this many


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    establishments: int = 4
    windows: tuple[str, ...] = ()  # one per establishment, cycled; empty = DEFAULT_WINDOW_SPREAD
    stays_per_day: float = 20.0  # admissions per day and establishment
    start: date | None = None  # None: each establishment starts at its window's first day
    days: int | None = 30  # days of admissions; None = forever
    seed: int = 0
    maturities: tuple[float, ...] = ()  # per establishment; empty = one low, one high, others ~1
    behaviour: Behaviour = field(default_factory=Behaviour)
    messiness: Messiness = field(default_factory=Messiness)

    def __post_init__(self) -> None:
        problems = []
        if self.establishments < 1:
            problems.append(f"establishments must be at least 1, not {self.establishments}")
        unknown = [w for w in self.windows if w not in WINDOWS]
        if unknown:
            problems.append(f"unknown window(s) {', '.join(unknown)}; use {', '.join(WINDOWS)}")
        if self.stays_per_day < 0:
            problems.append(f"stays per day must be 0 or more, not {self.stays_per_day}")
        if self.days is not None and self.days < 0:
            problems.append(f"days must be 0 or more, not {self.days}")
        if any(m <= 0 for m in self.maturities):
            problems.append("maturities must be above 0")
        for name in ("invalid_fraction", "duplicate_fraction"):
            value = getattr(self.messiness, name)
            if not 0 <= value < 1:
                problems.append(f"{name.replace('_', ' ')} must be in [0, 1), not {value}")
        if self.messiness.reorder_window < 0:
            problems.append("the reorder window must be 0 or more")
        if problems:
            raise ValueError("; ".join(problems))

    def window_of(self, index: int) -> str:
        spread = self.windows or DEFAULT_WINDOW_SPREAD
        return spread[index % len(spread)]

    def maturity_of(self, index: int, drawn: float) -> float:
        """Given maturity, else: #0 clearly under target, #1 clearly above, others `drawn`."""
        if self.maturities:
            return self.maturities[index % len(self.maturities)]
        if self.establishments == 1:
            return 1.0
        return {0: 0.45, 1: 1.35}.get(index, drawn)
