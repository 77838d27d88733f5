"""The pages' HTML: Jinja2 templates (templates/), autoescaped, French; CSS inline and no
external asset (hospital networks block them)."""

from __future__ import annotations

from datetime import date
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from processors.formatting import french_detail, percent

_env = Environment(
    loader=PackageLoader("streams.worker.pages", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["percent"] = lambda value: percent(value).strip()
_env.filters["day"] = lambda value: "–" if value is None else _day(value)
_env.filters["french_detail"] = french_detail


def _day(value: date | str) -> str:
    day = value if isinstance(value, date) else date.fromisoformat(value)
    return day.strftime("%d/%m/%Y")


def render(template: str, **context: Any) -> bytes:
    return _env.get_template(template).render(**context).encode()
