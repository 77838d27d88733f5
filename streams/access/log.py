"""The access log, `sunes.access`: who asked what, under which scope, and how many rows were
served — never a row, never a token."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from streams.access.scopes import Principal

# Its own logger, at INFO whatever the worker's --loglevel: an access log is not debugging.
access_log = logging.getLogger("sunes.access")
access_log.setLevel(logging.INFO)


def printable(text: str) -> str:
    """TEXT with its control characters escaped: what a request asked for goes into the log,
    and a newline in a URL must not forge a log line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def log_access(
    caller: Principal | None,
    scopes_used: Iterable[str],
    asked: str,
    served: int,
    client: str,
    unit: str = "row(s)",
) -> None:
    """One line per access served. caller None: an open resource (SUNES_FIGURES_ACCESS=open)."""
    who = f"{caller.subject} ({caller.via})" if caller is not None else "anonymous (open)"
    used = ",".join(sorted(scopes_used)) or "-"
    access_log.info(
        "%s served to %s from %s, scope %s: %d %s", printable(asked), printable(who), client,
        used, served, unit,
    )  # fmt: skip
