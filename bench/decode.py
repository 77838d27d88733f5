"""Per-event cost of decoding, in process: the ingest stage's validation, bundling, and the
establishment stage's decoding of bundles. Prints µs per event (best of a few rounds) and the
machine's load; never asserts.

    .venv/bin/python -m bench.decode [--events N]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from bench.common import build_dataset
from streams.worker import bundles
from topics.fast import fast_event, fast_struct
from topics.names import ESTABLISHMENTS
from topics.validation import parse_for_topic

ROUNDS = 5
BUNDLE = 200  # events per bundle, about what a poll of 5,000 gives 25 FINESS


def _best(events: int, work: Callable[[], Any]) -> float:
    """Best CPU µs per event over ROUNDS runs of `work` (which handles `events` events): CPU
    time, not wall time, as the machine is shared."""
    best = float("inf")
    for _ in range(ROUNDS):
        began = time.process_time()
        work()
        best = min(best, time.process_time() - began)
    return best / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    dataset = build_dataset(args.events)
    messages = [(t, k, v) for t, k, v in dataset.messages if t != ESTABLISHMENTS]
    count = len(messages)
    records = [parse_for_topic(v, t, k) for t, k, v in messages]
    raws = [v for _, _, v in messages]
    stamps = [1.7e9] * count
    groups = [range(i, min(i + BUNDLE, count)) for i in range(0, count, BUNDLE)]

    def validate() -> None:
        for topic, key, value in messages:
            parse_for_topic(value, topic, key)

    def fast() -> None:
        for topic, key, value in messages:
            fast_event(value, False) or parse_for_topic(value, topic, key)

    def fast_items() -> None:  # the worker's ingest: a valid event straight to its bundle item
        for topic, key, value in messages:
            fast = fast_struct(value, False)
            if fast is not None:
                bundles.event_item(fast.struct)
            else:
                bundles.event_item(parse_for_topic(value, topic, key))

    rows: list[tuple[str, float]] = [
        ("ingest: parse_for_topic", _best(count, validate)),
        ("ingest: fast_event, else parse_for_topic", _best(count, fast)),
        ("ingest: fast_struct + its item, else parse + item", _best(count, fast_items)),
    ]
    rows.extend(_bundle_rows(count, groups, raws, records, stamps))
    print(f"decode path, {count:,} events, load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, value in rows:
        if name.startswith("bundle bytes"):
            print(f"  {name:<52} {value:6.0f}", end="")
        elif not name:
            print(f" / {value:.0f}", end="")
        else:
            print(f"  {name:<52} {value:6.2f} µs/event")
    print()


def _bundle_rows(
    count: int, groups: list[range], raws: list[bytes], records: list[Any], stamps: list[float]
) -> list[tuple[str, float]]:
    v1 = [bundles.encode_bundle_v1([raws[i] for i in g], [stamps[i] for i in g]) for g in groups]
    rows = [bundles.event_row_v2(record) for record in records]
    v2 = [bundles.encode_bundle_v2([rows[i] for i in g], [stamps[i] for i in g]) for g in groups]
    types = [record.type for record in records]
    items = [bundles.event_item(record) for record in records]
    v3 = [
        bundles.encode_bundle([types[i] for i in g], [items[i] for i in g], [stamps[i] for i in g])
        for g in groups
    ]

    def encode_v1() -> None:
        for g in groups:
            bundles.encode_bundle_v1([raws[i] for i in g], [stamps[i] for i in g])

    def encode_v2() -> None:
        for g in groups:
            bundles.encode_bundle_v2(
                [bundles.event_row_v2(records[i]) for i in g], [stamps[i] for i in g]
            )

    def encode_v3() -> None:
        for g in groups:
            bundles.encode_bundle(
                [types[i] for i in g],
                [bundles.event_item(records[i]) for i in g],
                [stamps[i] for i in g],
            )

    def decode(encoded: list[bytes]) -> Callable[[], None]:
        def run() -> None:
            for value in encoded:
                for item, _ in bundles.decode_bundle(value):
                    bundles.bundle_record(item)

        return run

    return [
        ("ingest: bundle v1 (original JSON)", _best(count, encode_v1)),
        ("ingest: bundle v2 (event_row_v2 + encode_bundle_v2)", _best(count, encode_v2)),
        ("ingest: bundle v3 (event_item + encode_bundle)", _best(count, encode_v3)),
        ("agent: decode v1 (decode_bundle + trusted_record)", _best(count, decode(v1))),
        ("agent: decode v2 (decode_bundle + bundle_record)", _best(count, decode(v2))),
        ("agent: decode v3 (decode_bundle + bundle_record)", _best(count, decode(v3))),
        ("bundle bytes per event v1 / v2 / v3", sum(map(len, v1)) / count),
        ("", sum(map(len, v2)) / count),
        ("", sum(map(len, v3)) / count),
    ]


if __name__ == "__main__":
    main()
