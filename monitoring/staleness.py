"""The `--check` answer of the generators: what is stale, and the command that fixes it."""

from __future__ import annotations

import sys


def report_stale(lines: list[str], fix: str) -> int:
    """Print each stale item and the command that rewrites them; the exit status (1 if any)."""
    for line in lines:
        print(line, file=sys.stderr)
    if lines:
        print(f"run: {fix}", file=sys.stderr)
    return 1 if lines else 0
