"""Write the Grafana dashboards' JSON from their Python sources.

    python -m monitoring.grafana.generate            # rewrite monitoring/grafana/dashboards/
    python -m monitoring.grafana.generate --check    # exit 1 if the committed JSON is stale

The JSON is committed so that Grafana provisioning (and a reviewer) needs no Python; the
test suite checks that it is what the sources produce.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from monitoring.grafana.dashboards_src import DASHBOARDS
from monitoring.grafana.dashboards_src.common import number_panels
from monitoring.staleness import report_stale

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"


def render_all() -> dict[str, str]:
    """File name → JSON text, deterministic (sorted keys, stable panel ids)."""
    # ensure_ascii=False: French titles stay readable in review diffs.
    encoder = JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False)
    return {
        name: encoder.encode(number_panels(build().build())) + "\n"
        for name, build in DASHBOARDS.items()
    }


def stale_files(directory: Path = DASHBOARDS_DIR) -> list[str]:
    """Names whose committed JSON differs from the generator's output, or is missing; and
    JSON files that no source generates any more."""
    rendered = render_all()
    stale = [
        name
        for name, text in rendered.items()
        if not (directory / name).is_file() or (directory / name).read_text("utf-8") != text
    ]
    stale += sorted(p.name for p in directory.glob("*.json") if p.name not in rendered)
    return stale


def write_all(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="only report stale dashboards, exit 1 if any"
    )
    parser.add_argument("--output-dir", type=Path, default=DASHBOARDS_DIR)
    args = parser.parse_args(argv)
    if args.check:
        stale = [f"stale: {args.output_dir / name}" for name in stale_files(args.output_dir)]
        return report_stale(stale, "python -m monitoring.grafana.generate")
    for path in write_all(args.output_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
