"""Which worker owns a FINESS: the member Faust's assignment gave its partition (a stand-in
for the assignor here; two real workers: test_pages_browser.py)."""

from __future__ import annotations

from types import SimpleNamespace

from streams.worker.pages.forwarding import Peers
from streams.worker.table_store import partition_of

TOPIC = "app-facts-changelog"
ME, OTHER = "http://10.0.0.1:6066", "http://10.0.0.2:6066"


def peers(assignment: dict[str, list[int]]) -> Peers:
    metadata = {url: {TOPIC: parts} for url, parts in assignment.items()}
    app = SimpleNamespace(
        conf=SimpleNamespace(canonical_url=ME),
        assignor=SimpleNamespace(table_metadata=lambda topic: metadata if topic == TOPIC else {}),
    )
    table = SimpleNamespace(changelog_topic=SimpleNamespace(get_topic_name=lambda: TOPIC))
    return Peers(app, table, 4)


def test_the_owner_is_the_member_of_the_finess_partition() -> None:
    finess = "750000001"
    mine = partition_of(finess, 4)
    theirs = [p for p in range(4) if p != mine]
    assert peers({ME: [mine], OTHER: theirs}).owner(finess) == ME
    assert peers({ME: theirs, OTHER: [mine]}).owner(finess) == OTHER
    assert peers({}).owner(finess) is None  # before the first assignment


def test_the_others_are_every_member_but_this_one() -> None:
    assert peers({ME: [0, 1], OTHER: [2, 3]}).others() == [OTHER]
    assert peers({ME: [0, 1, 2, 3], OTHER: []}).others() == []  # a member without partitions
    assert peers({ME + "/": [0]}).is_me(ME)
