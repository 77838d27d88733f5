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
    # Retention horizon: an event with a timestamp more than this many days before the time it
    # was received is refused as too late (its facts may have left the state). Ten years: well
    # beyond the programme's windows (2022-2023) and DS 1.4's lookback.
    retention_days: int = 3653
    # An event with a timestamp more than this many hours after the time it was received is
    # refused: a typo (2031 for 2021) must not become the establishment's "now".
    future_skew_hours: int = 24
    # Version of the funding calendar (windows, targets): processors/data/funding_calendar.json.
    calendar_version: str | None = None

    def __post_init__(self) -> None:
        if self.grace_days < 0:
            raise ValueError(f"grace_days must be 0 or more, got {self.grace_days}")
        if self.lookback_days < 1:
            raise ValueError(f"lookback_days must be 1 or more, got {self.lookback_days}")
        if self.retention_days <= self.lookback_days + self.grace_days:
            raise ValueError(
                f"retention_days ({self.retention_days}) must exceed lookback_days + grace_days "
                f"({self.lookback_days + self.grace_days}): DS 1.4 reads stays that far back"
            )
        if self.future_skew_hours < 0:
            raise ValueError(f"future_skew_hours must be 0 or more, got {self.future_skew_hours}")
        unknown = sorted(self.stay_scope - set(STAY_KINDS))
        if unknown:
            raise ValueError(
                f"unknown stay kind(s) in stay_scope: {', '.join(unknown)}; "
                f"expected among {', '.join(STAY_KINDS)}"
            )
