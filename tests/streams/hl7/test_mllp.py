"""MLLP framing: frames across chunk boundaries, junk between frames, a frame over the limit
read to its end and told by its size, a frame the sender gave up, a connection cut mid-frame."""

from __future__ import annotations

import asyncio

import pytest

from streams.hl7.mllp import END, START, Frame, FrameCut, FrameReader, frame


def reader_of(*chunks: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return reader


async def frames_of(reader: FrameReader) -> list[Frame]:
    got = []
    while (item := await reader.next()) is not None:
        got.append(item)
    return got


async def test_two_frames_in_one_chunk_and_junk_before_them() -> None:
    reader = FrameReader(
        reader_of(b"\r\njunk" + frame(b"MSH|one") + b"\n" + frame(b"MSH|two")), 100
    )
    assert await frames_of(reader) == [Frame(b"MSH|one", 7), Frame(b"MSH|two", 7)]
    assert reader.skipped_bytes == len(b"\r\njunk") + 1


async def test_a_frame_fed_one_byte_at_a_time() -> None:
    data = frame(b"MSH|^~\\&|A\rPID|1") + frame(b"MSH|b")
    reader = FrameReader(reader_of(*(data[i : i + 1] for i in range(len(data)))), 100)
    assert [f.data for f in await frames_of(reader)] == [b"MSH|^~\\&|A\rPID|1", b"MSH|b"]


async def test_a_lone_fs_or_cr_inside_a_message_does_not_end_it() -> None:
    body = b"MSH|a\x1cb\rc"
    reader = FrameReader(reader_of(frame(body)), 100)
    assert await frames_of(reader) == [Frame(body, len(body))]


async def test_a_frame_over_the_limit_keeps_its_prefix_and_size_and_the_next_frame_follows() -> (
    None
):
    big = b"MSH|" + b"x" * 10_000
    chunks = [START, *(big[i : i + 333] for i in range(0, len(big), 333)), END, frame(b"MSH|ok")]
    reader = FrameReader(reader_of(*chunks), max_bytes=1000, prefix_bytes=64)
    first, second = await frames_of(reader)
    assert first == Frame(big[:64], len(big), too_large=True)
    assert second == Frame(b"MSH|ok", 6)


async def test_a_frame_of_exactly_the_limit_is_accepted_one_more_byte_is_not() -> None:
    reader = FrameReader(reader_of(frame(b"m" * 50), frame(b"m" * 51)), max_bytes=50)
    exact, over = await frames_of(reader)
    assert (exact.too_large, exact.size) == (False, 50)
    assert (over.too_large, over.size) == (True, 51)


async def test_a_connection_cut_mid_frame_raises_frame_cut_with_what_it_had() -> None:
    reader = FrameReader(reader_of(frame(b"MSH|ok"), START + b"MSH|half of it"), 100)
    assert await reader.next() == Frame(b"MSH|ok", 6)
    with pytest.raises(FrameCut) as cut:
        await reader.next()
    assert cut.value.size == len(b"MSH|half of it")


async def test_a_cut_too_large_frame_still_counts_every_byte() -> None:
    reader = FrameReader(reader_of(START + b"y" * 5000), max_bytes=1000)
    with pytest.raises(FrameCut) as cut:
        await reader.next()
    assert cut.value.size == 5000


async def test_a_new_start_block_abandons_the_frame_in_progress() -> None:
    reader = FrameReader(reader_of(START + b"MSH|given up" + frame(b"MSH|again")), 100)
    assert await frames_of(reader) == [Frame(b"MSH|again", 9)]
    assert reader.abandoned_frames == 1


async def test_an_end_between_frames_is_no_frame() -> None:
    assert await FrameReader(reader_of(b""), 10).next() is None
    assert await FrameReader(reader_of(b"\r\n"), 10).next() is None
