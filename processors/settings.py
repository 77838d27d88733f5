"""Settings of the counting rules. The defaults are SPEC.md's **default** interpretations.

Every setting is documented in docs/indicators.md; `sunes report` and the worker take the
same ones (flags and SUNES_* environment variables).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from topics.records import STAY_KINDS

DEFAULT_STAY_SCOPE = frozenset({"hospitalisation_complete", "hospitalisation_partielle", "had"})


@dataclass(frozen=True, slots=True)
class Settings:
    # A document or message counts when sent no later than discharge + grace_days (Paris
    # calendar days; 0 = the same day, the strict legal reading).
    grace_days: int = 30
    # DS 1.4: an earlier stay makes a returning patient when discharged at most this many days
    # before the admission.
    lookback_days: int = 365
    # Stay kinds counted by DS 1.x, DS 4.1 and DS 4.2.
    stay_scope: frozenset[str] = field(default=DEFAULT_STAY_SCOPE)
    # Exclusions from the DS 1.x denominators (default off).
    exclude_dmp_opposition: bool = False
    exclude_deceased: bool = False
    exclude_unqualified_ins: bool = False
    # Version of the funding calendar (windows, targets): processors/data/funding_calendar.json.
    calendar_version: str | None = None

    def __post_init__(self) -> None:
        if self.grace_days < 0:
            raise ValueError(f"grace_days must be 0 or more, got {self.grace_days}")
        if self.lookback_days < 1:
            raise ValueError(f"lookback_days must be 1 or more, got {self.lookback_days}")
        unknown = sorted(self.stay_scope - set(STAY_KINDS))
        if unknown:
            raise ValueError(
                f"unknown stay kind(s) in stay_scope: {', '.join(unknown)}; "
                f"expected among {', '.join(STAY_KINDS)}"
            )
