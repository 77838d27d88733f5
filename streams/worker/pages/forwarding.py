"""Any worker serves any establishment: which worker owns a FINESS, and asking it.

The FINESS's partition of the internal topic is Kafka's (streams.worker.table_store
.partition_of); its owner is the member Faust's partition assignment gave the facts table's
changelog partition of that number (co-partitioned with the internal topic). Every member
learns the whole assignment with each member's canonical URL (`app.conf.canonical_url`:
http://SUNES_WEB_HOST:SUNES_WEB_PORT, or SUNES_WEB_URL when the workers reach each other at
another address). A forwarded request carries the person's bearer token, so that the owner
checks the scope again, and the FORWARDED header: the owner never forwards it once more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp

from streams.worker.table_store import partition_of

FORWARDED = "X-Sunes-Forwarded-By"
TIMEOUT = aiohttp.ClientTimeout(total=30)


class PeerUnreachable(Exception):
    """The owner (or a peer) did not answer: said on the page, never hidden."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]


def _same(url: str, other: str) -> bool:
    return url.rstrip("/") == other.rstrip("/")


class Peers:
    """The workers of the group, from the partition assignment Faust keeps."""

    def __init__(self, app: Any, table: Any, partitions: int) -> None:
        self.app = app
        self.table = table
        self.partitions = partitions

    @property
    def me(self) -> str:
        return str(self.app.conf.canonical_url)

    def _assignment(self) -> dict[str, list[int]]:
        """URL → the changelog partitions it owns (empty before the first assignment)."""
        topic = self.table.changelog_topic.get_topic_name()
        metadata = self.app.assignor.table_metadata(topic)
        return {str(url): list(by_topic.get(topic, ())) for url, by_topic in metadata.items()}

    def owner(self, finess: str) -> str | None:
        """The URL of the worker that owns FINESS, None while no assignment names one."""
        partition = partition_of(finess, self.partitions)
        for url, owned in self._assignment().items():
            if partition in owned:
                return url
        return None

    def others(self) -> list[str]:
        """Every other worker that owns partitions."""
        return sorted(
            url for url, owned in self._assignment().items() if owned and not _same(url, self.me)
        )

    def is_me(self, url: str) -> bool:
        return _same(url, self.me)

    async def get(self, url: str, path_qs: str, token: str) -> Reply:
        """GET path_qs of a peer as the person (their bearer token), marked as forwarded."""
        headers = {"Authorization": f"Bearer {token}", FORWARDED: self.me}
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as http,
                http.get(
                    url.rstrip("/") + path_qs, headers=headers, allow_redirects=False
                ) as response,
            ):
                body = await response.read()
                kept = {
                    k: v for k, v in response.headers.items()
                    if k in ("Content-Disposition", "X-Total-Count", "Cache-Control")
                }  # fmt: skip
                return Reply(response.status, response.content_type, body, kept)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PeerUnreachable(f"{url}: {type(exc).__name__}") from None
