"""monitoring/runbook_links: every alert's runbook_url from one base, rewritten and checked."""

from __future__ import annotations

import shutil
from pathlib import Path

from monitoring import runbook_links
from monitoring.runbook_links import RUNBOOK_BASE, link_files, main, rewrite, stale_links


def test_the_committed_links_use_the_one_base() -> None:
    assert link_files(), "no alert or promtool test file found"
    assert stale_links() == []
    assert main(["--check"]) == 0


def test_rewrite_keeps_the_anchor_and_the_indentation() -> None:
    text = "x:\n    runbook_url: docs/runbook.md#sunesconsumerlag\n  other: 1\n"
    assert rewrite(text, "https://wiki.example.org/sunes") == (
        "x:\n    runbook_url: https://wiki.example.org/sunes#sunesconsumerlag\n  other: 1\n"
    )


def test_check_finds_a_stale_link_and_the_tool_fixes_it(tmp_path: Path) -> None:
    for sub in ("alerts", "tests"):
        shutil.copytree(runbook_links.PROMETHEUS_DIR / sub, tmp_path / sub)
    alerts = sorted((tmp_path / "alerts").glob("*.yml"))[0]
    text = alerts.read_text("utf-8")
    alerts.write_text(text.replace(f"{RUNBOOK_BASE}#", "docs/runbook.md#", 1), "utf-8")
    assert len(stale_links(tmp_path)) == 1
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert main(["--dir", str(tmp_path)]) == 0
    assert stale_links(tmp_path) == []
    assert alerts.read_text("utf-8") == text
