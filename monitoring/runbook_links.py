"""The alerts' runbook links, absolute, from one base: `runbook_url` is RUNBOOK_BASE#<anchor>.

    python -m monitoring.runbook_links           # rewrite the alert files and their promtool tests
    python -m monitoring.runbook_links --check   # exit 1 if a link is not RUNBOOK_BASE#<anchor>

Prometheus has no variables in rule files (and promtool 2.42 cannot test $externalLabels), so
the base lives here: set it to where your docs/runbook.md is published, run this, commit.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from monitoring.staleness import report_stale

# A placeholder, like the addresses of monitoring/alertmanager/alertmanager.yml.
RUNBOOK_BASE = "https://git.example.org/sunes-stream/blob/main/docs/runbook.md"

PROMETHEUS_DIR = Path(__file__).resolve().parent / "prometheus"
# `runbook_url: <anything>#<anchor>` on one line, in rule files and promtool expectations.
LINK = re.compile(r"^(?P<key>\s*runbook_url:\s*)(?P<url>\S*#(?P<anchor>[a-z0-9-]+))\s*$", re.M)


def link_files(directory: Path = PROMETHEUS_DIR) -> list[Path]:
    return sorted((directory / "alerts").glob("*.yml")) + sorted(
        (directory / "tests").glob("*.yml")
    )


def rewrite(text: str, base: str = RUNBOOK_BASE) -> str:
    return LINK.sub(lambda m: f"{m['key']}{base}#{m['anchor']}", text)


def stale_links(directory: Path = PROMETHEUS_DIR, base: str = RUNBOOK_BASE) -> list[str]:
    """`file: url` of every link that is not base#anchor."""
    return [
        f"{path.name}: {m['url']}"
        for path in link_files(directory)
        for m in LINK.finditer(path.read_text("utf-8"))
        if m["url"] != f"{base}#{m['anchor']}"
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report, exit 1 if stale")
    parser.add_argument("--dir", type=Path, default=PROMETHEUS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        stale = [f"not {RUNBOOK_BASE}#…: {line}" for line in stale_links(args.dir)]
        return report_stale(stale, "python -m monitoring.runbook_links")
    for path in link_files(args.dir):
        text = path.read_text("utf-8")
        if rewrite(text) != text:
            path.write_text(rewrite(text), encoding="utf-8")
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
