"""The bundle codec of the internal topic: events rebuilt without validating them again."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.worker.bundles import decode_bundle, encode_bundle, trusted_record
from tests.builders import deposited, discharged, establishment, mss_sent
from topics.validation import record_from_object


@pytest.mark.parametrize(
    "obj",
    [
        discharged("S1", correspondents=[{"rpps": "1", "mss_address": None},
                                         {"rpps": "2", "mss_address": "a@b.mssante.fr"}]),
        {**discharged("S2"), "occurred_at": "2023-01-12T09:00:00Z"},
        deposited("D", "11490-0", replaces="C"),
        {k: v for k, v in deposited("E", "11502-2").items() if k != "stay_id"},
        mss_sent("pro", "R1", attachments=[{"document_id": "d", "type_code": "t",
                                            "ins_status": "qualifiee", "cda_level": None}]),
        establishment(),
    ],
    ids=lambda o: o["type"],
)  # fmt: skip
def test_trusted_rebuild_equals_validation(obj: dict[str, Any]) -> None:
    assert trusted_record(obj) == record_from_object(obj)


def test_a_bundle_round_trips_its_events_and_timestamps() -> None:
    events = [orjson.dumps(discharged("S1")), orjson.dumps(deposited("D1", "11490-0"))]
    decoded = decode_bundle(encode_bundle(events, [1.5, None]))
    assert [(orjson.dumps(obj), stamp) for obj, stamp in decoded] == list(
        zip(events, [1.5, None], strict=True)
    )
    with pytest.raises(ValueError, match="not a bundle"):
        decode_bundle(b'{"events": [1]}')
