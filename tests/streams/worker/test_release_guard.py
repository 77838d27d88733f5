"""The release guard's reading of group members, and what its release mark says."""

from __future__ import annotations

from processors.codec import STATE_VERSION
from streams.worker.bundles import encode_bundle
from streams.worker.release_guard import COMPATIBILITY, client_id, foreign_members


def member(client: str, member_id: str = "") -> dict[str, str]:
    return {"client_id": client, "member_id": member_id or f"{client}-4f2c"}


def test_only_the_members_of_another_release_are_foreign() -> None:
    described = [
        {"group": "app", "members": [member(client_id("agent")), member("faust-0.11.3")]},
        {
            "group": "app-ingest",
            "members": [member("aiokafka-0.14.0"), member(client_id("ingest"))],
        },
        {"group": "empty", "members": []},
    ]
    assert foreign_members(described) == [
        ("app", "faust-0.11.3"),
        ("app-ingest", "aiokafka-0.14.0"),
    ]


def test_a_member_without_a_client_id_is_told_by_its_member_id() -> None:
    # Tansu answers an empty client id; Kafka's member ids begin with the client id
    ours = member("", f"{client_id('agent')}-0d6a1f")
    older = member("", "faust-0.11.3-0d6a1f")
    described = [{"group": "app", "members": [ours, older]}]
    assert foreign_members(described) == [("app", "faust-0.11.3-0d6a1f")]


def test_a_release_of_another_state_version_is_foreign() -> None:
    later = f"sunes-b3-s{STATE_VERSION}1-agent"  # e.g. s1 vs s11: not a prefix match
    assert foreign_members([{"group": "app", "members": [member(later)]}]) == [("app", later)]


def test_the_mark_names_what_this_release_writes() -> None:
    written = encode_bundle(["stay.discharged"], [b"{}"], [None])[0]
    assert f"sunes-b{written}-s{STATE_VERSION}" == COMPATIBILITY
    assert client_id("agent") == f"{COMPATIBILITY}-agent"
