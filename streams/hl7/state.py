"""What the converter remembers between messages, in a key-value store of bytes.

- stay: (FINESS, stay id) → admission facts (admitted_at, unit, DMP opposition,
  correspondents) from A01/A04/A08…, read by the A03 that lacks them;
- patient: (FINESS, digest of the INS) → IPP, for document messages that carry the INS only;
- message: (MSH-3, MSH-4, MSH-10) of an ORU/MDM → the documents it carried, read by the ZAM
  that names that MSH-10 (as MSH-5, MSH-6, OBX-4), even after a restart.

Writes are held until the message is accepted (`commit`): a refused message changes nothing.

Retention: each entry remembers the day it was last written, on the converter's clock (the
time messages are received), and `purge` deletes the entries not written for more than
`retention_days` (the worker's `--retention-days`): an event about them would be refused as
too late, and nothing else reads them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from processors.store import KeyValueStore
from streams.hl7.values import digest

_SEP = "\x1f"


def _key(kind: str, *parts: str) -> bytes:
    return _SEP.join(("hl7", kind, *parts)).encode("utf-8")


# The entries purged (label: no identifier), and where the days they were written are kept:
# day␟<key> → "YYYY-MM-DD", and by-day␟YYYY-MM-DD␟<key> → b"" to find them by day.
KINDS = {"stay": "admission", "ins": "ins_to_ipp", "msg": "message"}
_DAY = _key("day", "")
_BY_DAY = _key("by-day", "")
_DATED = _key("meta", "dated")  # set once every entry has a day (older stores had none)


def _kind_of(key: bytes) -> str | None:
    parts = key.split(_SEP.encode(), 2)
    return KINDS.get(parts[1].decode()) if len(parts) == 3 and parts[0] == b"hl7" else None


def _mark(store: KeyValueStore, key: bytes, day: str) -> None:
    """Remember that `key` was written on `day` (one read; two writes when the day moves)."""
    old = store.get(_DAY + key)
    if old == day.encode():
        return
    if old is not None:
        store.delete(_BY_DAY + old + _SEP.encode() + key)
    store.set(_DAY + key, day.encode())
    store.set(_BY_DAY + day.encode() + _SEP.encode() + key, b"")


def purge(store: KeyValueStore, clock: datetime, retention_days: int) -> Counter[str]:
    """Delete the entries last written before clock - retention_days; counts by kind."""
    today = clock.astimezone(UTC).date().isoformat()
    if store.get(_DATED) is None:  # entries written before days were kept: from today on
        for key, _ in list(store.items(b"hl7" + _SEP.encode())):
            if _kind_of(key) is not None and store.get(_DAY + key) is None:
                _mark(store, key, today)
        store.set(_DATED, b"1")
    horizon = (clock.astimezone(UTC) - timedelta(days=retention_days)).date().isoformat()
    purged: Counter[str] = Counter()
    for entry, _ in list(store.items(_BY_DAY)):
        day, key = entry[len(_BY_DAY) : len(_BY_DAY) + 10], entry[len(_BY_DAY) + 11 :]
        if day.decode() >= horizon:
            continue
        if store.get(_DAY + key) == day:
            store.delete(key)
            store.delete(_DAY + key)
            purged[_kind_of(key) or "other"] += 1
        store.delete(entry)
    return purged


class ConverterState:
    """Typed reads and held writes over the store."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store
        self.pending: dict[bytes, bytes] = {}

    def _get(self, key: bytes) -> Any:
        raw = self.pending[key] if key in self.pending else self.store.get(key)
        return None if raw is None else orjson.loads(raw)

    def _set(self, key: bytes, value: Any) -> None:
        self.pending[key] = orjson.dumps(value)

    def stay(self, finess: str, stay_id: str) -> dict[str, Any] | None:
        found = self._get(_key("stay", finess, stay_id))
        return found if isinstance(found, dict) else None

    def set_stay(self, finess: str, stay_id: str, facts: dict[str, Any]) -> None:
        self._set(_key("stay", finess, stay_id), facts)

    def ipp_of(self, finess: str, ins: str) -> str | None:
        found = self._get(_key("ins", finess, digest(ins)))
        return found if isinstance(found, str) else None

    def set_ipp(self, finess: str, ins: str, ipp: str) -> None:
        self._set(_key("ins", finess, digest(ins)), ipp)

    def message(self, application: str, facility: str, control_id: str) -> dict[str, Any] | None:
        found = self._get(_key("msg", application, facility, control_id))
        return found if isinstance(found, dict) else None

    def set_message(
        self, application: str, facility: str, control_id: str, carried: dict[str, Any]
    ) -> None:
        self._set(_key("msg", application, facility, control_id), carried)

    def commit(self, received: datetime | None = None) -> None:
        """Write what the accepted message changed, dated the day it was received."""
        day = (received or datetime.now(UTC)).astimezone(UTC).date().isoformat()
        for key, value in self.pending.items():
            self.store.set(key, value)
            _mark(self.store, key, day)
        self.pending.clear()

    def discard(self) -> None:
        self.pending.clear()
