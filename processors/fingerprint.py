"""What a stored state was computed with: the state version and the counting settings.

Each establishment's entries carry one meta entry (`FINESS|m|state`, processors.state): the
codec's STATE_VERSION and the settings that shape its units' contributions. A worker whose
own differ recomputes every contribution from the stored facts (streams/worker/recompute.py).

In the fingerprint: grace_days, lookback_days, stay_scope and the exclude_* flags — the rules
(processors.rules) read them to compute a unit's contribution. Not in it: calendar_version
(contributions are monthly; the calendar only sums months into window rows, computed when
read), retention_days and future_skew_hours (they decide whether an event is accepted, before
it reaches the state: an event refused under the old limits is not in the facts to recount).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processors.codec import STATE_VERSION
from processors.settings import Settings


def counting_settings(settings: Settings) -> dict[str, Any]:
    """The settings that shape contributions, as plain JSON values (sorted, comparable)."""
    return {
        "grace_days": settings.grace_days,
        "lookback_days": settings.lookback_days,
        "stay_scope": sorted(settings.stay_scope),
        "exclude_dmp_opposition": settings.exclude_dmp_opposition,
        "exclude_deceased": settings.exclude_deceased,
        "exclude_unqualified_ins": settings.exclude_unqualified_ins,
    }


@dataclass(frozen=True, slots=True)
class StateMeta:
    """The version of an establishment's stored entries and the settings they were counted
    with. Stores written before it existed have none: version 0, settings unknown."""

    version: int
    settings: dict[str, Any]

    @classmethod
    def current(cls, settings: Settings) -> StateMeta:
        return cls(STATE_VERSION, counting_settings(settings))

    def differences(self, other: StateMeta | None) -> list[str]:
        """What differs from a stored meta, for the log: names only, never a value that could
        not be shown (settings hold no personal data)."""
        if other is None:
            return ["state version 0 (no meta entry)"]
        changed = []
        if other.version != self.version:
            changed.append(f"state version {other.version} → {self.version}")
        for name, value in self.settings.items():
            if other.settings.get(name) != value:
                changed.append(f"{name} {other.settings.get(name)} → {value}")
        return changed
