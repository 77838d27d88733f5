"""MLLP framing over asyncio streams: <VT> message <FS><CR>, with a size limit and cut frames.

python-hl7's framing bytes (`hl7.mllp`), read by hand rather than with its HL7StreamReader,
which decodes with one fixed charset (ours comes from each message's MSH-18) and clears a frame
over its limit without telling its size. Here:

- bytes before a start block are skipped (counted in `skipped_bytes`);
- a frame over `max_bytes` is read to its end but only its first `prefix_bytes` are kept:
  `Frame.too_large`, with its real size, so that the listener can refuse it and go on;
- a start block inside a frame means the sender gave up the frame and began another: the
  abandoned part is dropped (counted in `abandoned_frames`);
- the connection closing inside a frame raises `FrameCut`: nothing of it is used.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hl7.mllp import streams as _hl7_mllp

START: bytes = bytes(_hl7_mllp.START_BLOCK)  # <VT>
END: bytes = bytes(_hl7_mllp.END_BLOCK + _hl7_mllp.CARRIAGE_RETURN)  # <FS><CR>
CHUNK_BYTES = 64 * 1024
PREFIX_BYTES = 1024  # what is kept of a frame over the limit (as a dead letter's prefix)


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes  # the message; only its first PREFIX_BYTES when too_large
    size: int  # bytes between the start block and the end block
    too_large: bool = False


class FrameCut(Exception):
    """The connection ended inside a frame (after `size` bytes of it)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the connection ended {size:,} bytes into a frame")
        self.size = size


def frame(message: bytes) -> bytes:
    """One message in its MLLP envelope."""
    return START + message + END


class FrameReader:
    """Reads MLLP frames, one at a time, from an asyncio StreamReader."""

    def __init__(
        self, reader: asyncio.StreamReader, max_bytes: int, prefix_bytes: int = PREFIX_BYTES
    ) -> None:
        self._reader = reader
        self.max_bytes = max_bytes
        self.prefix_bytes = prefix_bytes
        self._buffer = bytearray()
        self.skipped_bytes = 0
        self.abandoned_frames = 0

    async def _fill(self) -> bool:
        chunk = await self._reader.read(CHUNK_BYTES)
        self._buffer += chunk
        return bool(chunk)

    async def next(self) -> Frame | None:
        """The next frame; None when the connection ends between frames."""
        while (start := self._buffer.find(START)) < 0:
            self.skipped_bytes += len(self._buffer)
            self._buffer.clear()
            if not await self._fill():
                return None
        self.skipped_bytes += start
        del self._buffer[: start + 1]
        return await self._body()

    async def _body(self) -> Frame:
        searched = 0  # bytes of the buffer known to hold no end block and no start block
        dropped = 0  # bytes of a too-large frame already discarded
        prefix: bytes | None = None
        while True:
            end = self._buffer.find(END, max(0, searched - 1))
            restart = self._buffer.rfind(START, searched, end if end >= 0 else None)
            if restart >= 0:  # the sender began a new frame: forget the one it gave up
                self.abandoned_frames += 1
                del self._buffer[: restart + 1]
                searched, dropped, prefix = 0, 0, None
                continue
            if end >= 0:
                break
            searched = len(self._buffer)
            if prefix is None and dropped + len(self._buffer) > self.max_bytes:
                prefix = bytes(self._buffer[: self.prefix_bytes])
            if prefix is not None and len(self._buffer) > 1:  # keep one byte: FS may end it
                dropped += len(self._buffer) - 1
                del self._buffer[:-1]
                searched = 1
            if not await self._fill():
                raise FrameCut(dropped + len(self._buffer))
        data = bytes(self._buffer[:end])
        del self._buffer[: end + len(END)]
        size = dropped + len(data)
        if prefix is None and size <= self.max_bytes:
            return Frame(data, size)
        return Frame((prefix if prefix is not None else data)[: self.prefix_bytes], size, True)
