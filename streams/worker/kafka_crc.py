"""Monkeypatch: aiokafka's consumers check each fetched record batch's CRC-32C in hardware.

Why: aiokafka 0.14.0 checks the CRC of every record batch it fetches (``check_crcs``, on in
Faust's consumer and the ingest's) with its own table-driven CRC-32C, ~1.7 GB/s, holding the
GIL. The worker's Faust consumer thread (Thread-1) does it for every bundle of the internal
topic, and the main thread, the worker's bottleneck, waits for the GIL meanwhile: py-spy
with C frames at f35e3bd put `cutil_calc_crc32c` at ~10 % of that thread's samples, ~4 % of
the main thread's time (bench/README.md). google-crc32c (Google's C library, SSE 4.2 /
ARMv8 CRC instructions) does the same sum at ~15 GB/s.

What changes: nothing but who computes the sum. Fetched data is read as before (aiokafka's
`MemoryRecords`, its batches and records); each v2 batch's CRC (stored at bytes 17-20 of the
batch, over bytes 21 to its end: the Kafka protocol's record batch) is checked by
`google_crc32c` when `PartitionRecords` takes the batch, where aiokafka checked it, and a
mismatch raises the same ``CorruptRecordException("Invalid CRC - <tp>")`` at the same point
(the records before it delivered, the batch refetched by the caller). Legacy batches
(magic 0 and 1, zlib CRC-32) keep aiokafka's own check. A consumer that asked for no check
(``check_crcs=False``) still gets none.

`apply()` refuses other aiokafka versions (the private names below are 0.14.0's) and leaves
aiokafka alone when google-crc32c has no C implementation (its pure Python one is slower).
Tests: tests/streams/worker/test_kafka_crc.py (real aiokafka batches, intact and corrupt).
"""

from __future__ import annotations

from typing import Any

import aiokafka
import google_crc32c
from aiokafka import errors as kafka_errors
from aiokafka.consumer import fetcher
from aiokafka.record.memory_records import MemoryRecords

PINNED_AIOKAFKA = "0.14.0"

# The record batch v2 header (Kafka protocol): baseOffset int64, batchLength int32,
# partitionLeaderEpoch int32, magic int8, crc uint32, then attributes.. the CRC covers.
_LENGTH_AT = 8
_MAGIC_AT = 16
_CRC_AT = 17
_CRC_FROM = 21
_LOG_OVERHEAD = 12  # baseOffset + batchLength: what batchLength does not count

_original: Any = None


class _RawRecords(MemoryRecords):  # type: ignore[misc]
    """aiokafka's MemoryRecords, keeping the fetched bytes (its C type does not show them)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.raw = data


class CheckedRecords:
    """A fetch's `_RawRecords`, each v2 batch's CRC checked by google-crc32c when taken."""

    __slots__ = ("_pos", "_raw", "_records", "_tp")

    def __init__(self, tp: Any, records: _RawRecords) -> None:
        self._tp = tp
        self._records = records
        self._raw: bytes = records.raw
        self._pos = 0  # where the next batch starts: MemoryRecords takes them in order

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def next_batch(self) -> Any:
        pos = self._pos
        batch = self._records.next_batch()  # None at the end; raises on a truncated batch
        if batch is None:
            return None
        raw = self._raw
        end = pos + _LOG_OVERHEAD + int.from_bytes(raw[pos + _LENGTH_AT : pos + _MAGIC_AT - 4])
        self._pos = end
        if raw[pos + _MAGIC_AT] >= 2:
            stored = int.from_bytes(raw[pos + _CRC_AT : pos + _CRC_FROM])
            valid = google_crc32c.value(raw[pos + _CRC_FROM : end]) == stored
        else:
            valid = batch.validate_crc()
        if not valid:  # what aiokafka's PartitionRecords raises
            raise kafka_errors.CorruptRecordException(f"Invalid CRC - {self._tp}")
        return batch


def is_applied() -> bool:
    return _original is not None


def apply() -> None:
    """Check fetched CRCs with google-crc32c in this process (idempotent)."""
    global _original
    if _original is not None:
        return
    if aiokafka.__version__ != PINNED_AIOKAFKA:
        raise RuntimeError(
            f"streams.worker.kafka_crc was written for aiokafka {PINNED_AIOKAFKA}, found "
            f"{aiokafka.__version__}: re-check fetcher.MemoryRecords and PartitionRecords "
            "(their arguments, and where the CRC is checked) before changing the pin"
        )
    if google_crc32c.implementation != "c":
        return  # its pure Python sum is slower than aiokafka's: keep aiokafka's
    original = fetcher.PartitionRecords

    class PartitionRecords(original):  # type: ignore[misc,valid-type]
        def __init__(
            self,
            tp: Any,
            records: Any,
            aborted_transactions: Any,
            fetch_offset: int,
            key_deserializer: Any,
            value_deserializer: Any,
            check_crcs: bool,
            isolation_level: Any,
        ) -> None:
            if check_crcs and isinstance(records, _RawRecords):
                records, check_crcs = CheckedRecords(tp, records), False  # checked there
            super().__init__(
                tp,
                records,
                aborted_transactions,
                fetch_offset,
                key_deserializer,
                value_deserializer,
                check_crcs,
                isolation_level,
            )

    fetcher.MemoryRecords = _RawRecords
    fetcher.PartitionRecords = PartitionRecords
    _original = original


def revert() -> None:
    """Undo `apply` (for tests); a no-op when not applied."""
    global _original
    if _original is None:
        return
    fetcher.MemoryRecords = MemoryRecords
    fetcher.PartitionRecords = _original
    _original = None
