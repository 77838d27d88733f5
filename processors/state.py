"""One establishment's facts as the join reads them: typed, cached, written back in batches.

Keys are `FINESS|kind|id` in one key-value store (processors.store). Reads go through a
bounded LRU cache of decoded objects shared by every establishment of a collection; writes
stay in the cache, marked dirty, until `StateCache.flush` writes each changed key once, all
in one `KeyValueStore.write` (the stream calls it once per bundle). RAM thus holds the cache and the aggregates, never the
whole history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, Final

from processors import codec
from processors.aggregates import Contribution
from processors.facts import DocumentFacts, RecipientFacts, StayFacts
from processors.fingerprint import StateMeta
from processors.store import Change, KeyValueStore

SEPARATOR: Final = b"|"
_JOIN: Final = SEPARATOR.decode().join  # the key's parts joined as store_key does, in hot paths
# kinds of entries
STAY: Final = "s"
DOCUMENT: Final = "d"
RECIPIENT: Final = "r"
DOCS_OF_STAY: Final = "is"
DOCS_OF_PATIENT: Final = "ip"
STAYS_OF_PATIENT: Final = "iq"
REPLACED_BY: Final = "ir"
STAY_UNIT: Final = "us"  # contribution of a stay
REPORT_UNIT: Final = "ur"  # contribution of a report chain, keyed by its smallest document id
CORRESPONDENT_UNIT: Final = "uc"  # contribution of an MSS Pro recipient (DS 4.1)
UNIT_KINDS: Final = frozenset({STAY_UNIT, REPORT_UNIT, CORRESPONDENT_UNIT})
# Purged periods (processors.purge): what their units contributed, per month; and the
# refusal horizon of the establishment's last purge (id "").
ARCHIVE: Final = "ua"
PURGE_HORIZON: Final = "ph"
# A purge chunk's writes, stored before them and deleted after them (id ""): a crash amid them
# is finished from it (processors.collection).
PURGE_JOURNAL: Final = "pj"
META: Final = "m"  # what the entries were computed with (processors.fingerprint), id META_ID
META_ID: Final = "state"

_ids: Final = (codec.encode_ids, codec.decode_ids)
_units: Final = (codec.encode_contribution, codec.decode_contribution)


def _encode_meta(meta: StateMeta) -> bytes:
    return codec.encode_meta(meta.version, meta.settings)


def _decode_meta(raw: bytes) -> StateMeta:
    return StateMeta(*codec.decode_meta(raw))


CODECS: Final[dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]] = {
    STAY: (codec.encode_stay, codec.decode_stay),
    DOCUMENT: (codec.encode_document, codec.decode_document),
    RECIPIENT: (codec.encode_recipient, codec.decode_recipient),
    DOCS_OF_STAY: _ids,
    DOCS_OF_PATIENT: _ids,
    STAYS_OF_PATIENT: _ids,
    REPLACED_BY: _ids,
    STAY_UNIT: _units,
    REPORT_UNIT: _units,
    CORRESPONDENT_UNIT: _units,
    ARCHIVE: _units,
    PURGE_HORIZON: (codec.encode_moment, codec.decode_moment),
    META: (_encode_meta, _decode_meta),
}
_ENCODERS: Final = {kind: codecs[0] for kind, codecs in CODECS.items()}
_ABSENT: Final = object()  # not cached yet (a key the store lacks is cached as None)
_NO_IDS: Final[frozenset[str]] = frozenset()


def store_key(finess: str, kind: str, ident: str) -> bytes:
    return _JOIN((finess, kind, ident)).encode()


def parse_store_key(key: bytes) -> tuple[str, str, str]:
    finess, kind, ident = key.split(SEPARATOR, 2)
    return finess.decode(), kind.decode(), ident.decode()


CacheKey = tuple[str, str, str]  # (FINESS, kind, id)


class StateCache:
    """Decoded entries by (FINESS, kind, id), oldest first; dirty ones not yet stored.

    Eviction is first-in first-out rather than least-recently-used: a hit costs one dict
    look-up (the join reads ~25 entries per event), and an evicted hot entry is read back
    from the store on its next use.
    """

    def __init__(self, store: KeyValueStore, capacity: int | None = 100_000) -> None:
        self.store = store
        self.capacity = capacity  # None: keep everything (the batch report)
        # A dict, not an OrderedDict: it keeps insertion order too (a key put again keeps its
        # place), and its writes cost a quarter (~5 an event); see flush for the eviction.
        self.entries: dict[CacheKey, Any] = {}
        self.dirty: set[CacheKey] = set()

    def load(self, key: CacheKey) -> Any:
        """Read a key that is not cached from the store."""
        raw = self.store.get(_JOIN(key).encode())  # store_key(*key), without a call
        value = None if raw is None else CODECS[key[1]][1](raw)
        self.entries[key] = value
        return value

    def put(self, key: CacheKey, value: Any) -> None:
        """`value` None, or empty (a set, a contribution), deletes the key at the next flush."""
        self.entries[key] = value if value else None
        self.dirty.add(key)

    def flush(self) -> int:
        """Write every dirty entry once; then forget the oldest entries beyond capacity."""
        written = len(self.dirty)
        if written:
            entries = self.entries
            encoders = _ENCODERS
            changes: list[Change] = []
            for key in self.dirty:  # ~2.6 an event: store_key and CODECS written out
                value = entries[key]
                changes.append(  # not a bound method kept: compiled, a direct PyList_Append
                    (_JOIN(key).encode(), None if value is None else encoders[key[1]](value))
                )
            self.store.write(changes)  # one transaction: see KeyValueStore.write
            self.dirty.clear()
        capacity = self.capacity
        if capacity is not None and len(self.entries) > capacity:
            # The oldest first, down to capacity less 1/32: a dict's first keys are reached
            # past the slots its deletions left (until it resizes), so it is done in passes
            # that each free room for many flushes, not on every small bundle's flush.
            entries = self.entries
            for key in list(islice(entries, len(entries) - capacity + capacity // 32)):
                del entries[key]
        return written

    def pending(self, finess: str) -> list[tuple[str, str, bytes | None]]:
        """The dirty entries of one FINESS as they will be written: (kind, id, bytes or None
        for a deletion)."""
        found = []
        for key in self.dirty:
            if key[0] == finess:
                value = self.entries[key]
                found.append((key[1], key[2], None if value is None else CODECS[key[1]][0](value)))
        return found

    def forget(self, keep: Callable[[str], bool] | None = None) -> None:
        """Drop cached entries (of the establishments `keep` rejects, or all): another worker
        may change them meanwhile. Flush first: dirty entries are never dropped."""
        if self.dirty:
            raise RuntimeError("flush the state cache before forgetting entries")
        if keep is None:
            self.entries.clear()
            return
        for key in [k for k in self.entries if not keep(k[0])]:
            del self.entries[key]


class EstablishmentState:
    """The entries of one FINESS, typed."""

    def __init__(self, finess: str, cache: StateCache) -> None:
        self.finess = finess
        self.cache = cache
        self._entries = cache.entries

    def get(self, kind: str, ident: str) -> Any:
        key = (self.finess, kind, ident)
        value = self._entries.get(key, _ABSENT)  # a hit is one look-up: the hot path
        return self.cache.load(key) if value is _ABSENT else value

    def put(self, kind: str, ident: str, value: Any) -> None:
        key = (self.finess, kind, ident)  # StateCache.put, written out: ~3 a event
        self._entries[key] = value if value else None
        self.cache.dirty.add(key)

    # The join's hottest reads: `get` written out, one look-up on a hit.

    def stay(self, stay_id: str) -> StayFacts | None:
        key = (self.finess, STAY, stay_id)
        hit = self._entries.get(key, _ABSENT)  # the value, or _ABSENT (not cached yet)
        value: StayFacts | None = self.cache.load(key) if hit is _ABSENT else hit
        return value

    def document(self, document_id: str) -> DocumentFacts | None:
        key = (self.finess, DOCUMENT, document_id)
        hit = self._entries.get(key, _ABSENT)  # the value, or _ABSENT (not cached yet)
        value: DocumentFacts | None = self.cache.load(key) if hit is _ABSENT else hit
        return value

    def recipient(self, rpps: str) -> RecipientFacts | None:
        value: RecipientFacts | None = self.get(RECIPIENT, rpps)
        return value

    def ids(self, index: str, key: str) -> frozenset[str]:
        """A join index entry; change it with `add_id`/`discard_id`."""
        entry = (self.finess, index, key)
        hit = self._entries.get(entry, _ABSENT)
        value: frozenset[str] | None = self.cache.load(entry) if hit is _ABSENT else hit
        return value or _NO_IDS

    def add_id(self, index: str, key: str, ident: str) -> None:
        ids = self.ids(index, key)
        if ident not in ids:
            self.put(index, key, ids | {ident})

    def discard_id(self, index: str, key: str, ident: str) -> None:
        ids = self.ids(index, key)
        if ident in ids:
            self.put(index, key, ids - {ident})

    def contribution(self, unit_kind: str, ident: str) -> Contribution:
        key = (self.finess, unit_kind, ident)
        hit = self._entries.get(key, _ABSENT)
        value: Contribution | None = self.cache.load(key) if hit is _ABSENT else hit
        return value or {}

    def entries(self, kind: str) -> Iterator[tuple[str, Any]]:
        """Every current entry of a kind, without flushing or filling the cache: what the
        store holds, as changed by the dirty entries not yet written (a rare human request,
        e.g. the units of a figure)."""
        prefix = store_key(self.finess, kind, "")
        decode = CODECS[kind][1]
        cached = self._entries
        seen = set()
        for key, raw in self.cache.store.items(prefix):
            if key.startswith(prefix):  # a store may give more than asked
                ident = key[len(prefix) :].decode()
                seen.add(ident)
                value = cached.get((self.finess, kind, ident), _ABSENT)
                value = decode(raw) if value is _ABSENT else value
                if value is not None:
                    yield ident, value
        for finess, entry_kind, ident in list(self.cache.dirty):
            if finess == self.finess and entry_kind == kind and ident not in seen:
                value = cached.get((finess, kind, ident))
                if value is not None:
                    yield ident, value

    def scan(self, kind: str) -> Iterator[tuple[str, Any]]:
        """Every stored entry of a kind (after a flush): for a full recomputation."""
        self.cache.flush()
        prefix = store_key(self.finess, kind, "")
        decode = CODECS[kind][1]
        for key, raw in self.cache.store.items(prefix):
            if key.startswith(prefix):  # a store may give more than asked
                yield key[len(prefix) :].decode(), decode(raw)

    def idents(self, kind: str) -> list[str]:
        """The ids of every stored entry of a kind (after a flush), none decoded: a
        recomputation reads each entry again at its turn, the state may change in between."""
        self.cache.flush()
        prefix = store_key(self.finess, kind, "")
        return [
            key[len(prefix) :].decode()
            for key, _ in self.cache.store.items(prefix)
            if key.startswith(prefix)  # a store may give more than asked
        ]
