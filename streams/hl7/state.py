"""What the converter remembers between messages, in a key-value store of bytes.

- stay: (FINESS, stay id) → admission facts (admitted_at, unit, DMP opposition,
  correspondents) from A01/A04/A08…, read by the A03 that lacks them;
- patient: (FINESS, digest of the INS) → IPP, for document messages that carry the INS only;
- message: (MSH-3, MSH-4, MSH-10) of an ORU/MDM → the documents it carried, read by the ZAM
  that names that MSH-10 (as MSH-5, MSH-6, OBX-4), even after a restart.

Writes are held until the message is accepted (`commit`): a refused message changes nothing.
"""

from __future__ import annotations

from typing import Any

import orjson

from processors.store import KeyValueStore
from streams.hl7.values import digest

_SEP = "\x1f"


def _key(kind: str, *parts: str) -> bytes:
    return _SEP.join(("hl7", kind, *parts)).encode("utf-8")


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

    def commit(self) -> None:
        for key, value in self.pending.items():
            self.store.set(key, value)
        self.pending.clear()

    def discard(self) -> None:
        self.pending.clear()
