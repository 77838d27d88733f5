"""The indicator tables as Prometheus metrics, read at scrape time (a custom Collector).

Labels carry FINESS, indicator, period, and a unit's status and reason only: never patient
data. Numerators, denominators, unit counts and targets are exported separately so that
recording rules can sum them across workers and establishments before dividing (EJ, region
and national roll-ups stay right). Periods are relative to the establishment's event-time
"now" (processors.establishment), never the wall clock: a replay shows what the live
worker showed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    Callable,
    Collection,
    Container,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from datetime import date, timedelta

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from processors.breakdown import establishment_unit_counts
from processors.calendar import Window
from processors.catalogue import RATE_INDICATORS
from processors.establishment import Establishment
from processors.figures import IndicatorRow
from processors.periods import month_key, paris_midnight, previous_month
from processors.projection import NOT_PROJECTED, Tally, project, tallies
from processors.units import PENDING, UnitCount, status_of

# (topic, partition) → messages not yet consumed
LagSource = Callable[[], Mapping[tuple[str, int], int]]

# Rendering time after which a scrape on the event loop gives the loop back (serve)
SLICE_SECONDS = 0.01

# The families of the collector that are not per establishment
UNREGISTERED = "sunes_establishments_unregistered"
LAG = "sunes_consumer_lag"

PERIOD_LABELS = ["finess", "indicator", "period"]
# The `reason` label of counted units (a label value cannot be missing).
COUNTED_REASON = "none"


def _day_start(day: date) -> float:
    return paris_midnight(day).timestamp()


FINESS_INDICATOR = ["finess", "indicator"]
FINESS_WINDOW = ["finess", "window"]

# attribute → (family, help, labels) of the per-establishment families
_FAMILIES: dict[str, tuple[str, str, list[str]]] = {
    "numerator": (
        "sunes_indicator_numerator",
        "Numerator of a SUN-ES indicator (current month, previous month, funding window).",
        PERIOD_LABELS,
    ),
    "denominator": (
        "sunes_indicator_denominator",
        "Denominator of a SUN-ES indicator; a series exists only when it is above 0.",
        PERIOD_LABELS,
    ),
    "units": (
        "sunes_indicator_units",
        "Units of a denominator (stays, reports, correspondents) by status (counted, "
        "pending, missed) and reason (docs/indicators.md; `none` for counted units).",
        [*PERIOD_LABELS, "status", "reason"],
    ),
    "target": (
        "sunes_indicator_target_ratio",
        "Target (0-1) of the indicator in the establishment's funding window.",
        FINESS_INDICATOR,
    ),
    "projected": (
        "sunes_indicator_window_projected_ratio",
        "Funding-window rate projected to the window's last day from the recent weeks' "
        "rate and volume (docs/monitoring.md).",
        FINESS_INDICATOR,
    ),
    "best_case": (
        "sunes_indicator_window_best_case_ratio",
        "Funding-window rate at the window's last day if every pending unit and every "
        "unit still to come counted.",
        FINESS_INDICATOR,
    ),
    "to_come": (
        "sunes_indicator_window_units_to_come",
        "Units expected in the funding window after the establishment's now, at the "
        "recent weeks' daily volume.",
        FINESS_INDICATOR,
    ),
    "window_start": (
        "sunes_funding_window_start_timestamp_seconds",
        "First instant (Paris time) of the establishment's funding window.",
        FINESS_WINDOW,
    ),
    "window_end": (
        "sunes_funding_window_end_timestamp_seconds",
        "End of the establishment's funding window: the first instant (Paris time) after "
        "its last day (postponement included).",
        FINESS_WINDOW,
    ),
    "info": (
        "sunes_establishment_info",
        "Registry entry of an establishment (FINESS géographique).",
        ["finess", "finess_ej", "region", "window", "name"],
    ),
    "cme": (
        "sunes_cme_presentation",
        "DS 4.3: MSS citoyenne presented to the CME (1 yes, 0 no).",
        ["finess"],
    ),
    "watermark": (
        "sunes_establishment_watermark_timestamp_seconds",
        "Event-time watermark of an establishment: the start of the Paris day of its "
        "latest discharge seen.",
        ["finess"],
    ),
    "period_info": (
        "sunes_indicator_period_info",
        "The period each `period` label stands for (period_key: the month, 2023-03, or the "
        "window, F2), as the worker's worklist URLs and `sunes explain` name it.",
        ["finess", "period", "period_key"],
    ),
    "pending_deadline": (
        "sunes_indicator_pending_deadline_timestamp_seconds",
        "Start of the Paris day that is the last one on which the earliest pending unit of "
        "a figure can still count (DS 4.1 aside).",
        PERIOD_LABELS,
    ),
    "now": (
        "sunes_establishment_now_timestamp_seconds",
        "The establishment's now: the start of the Paris day of its latest event of any "
        "type. Current month and window are counted from it.",
        ["finess"],
    ),
}


class _Families:
    """The per-establishment families of one scrape, by attribute (see _FAMILIES)."""

    def __init__(self) -> None:
        self.by_name = {
            attr: GaugeMetricFamily(name, text, labels=labels)
            for attr, (name, text, labels) in _FAMILIES.items()
        }

    def __getattr__(self, attr: str) -> GaugeMetricFamily:
        try:
            return self.__dict__["by_name"][attr]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(attr) from None

    def all(self) -> tuple[GaugeMetricFamily, ...]:
        return tuple(self.by_name.values())


class IndicatorCollector(Collector):
    """The indicator families, two ways: `collect()` for a registry (every establishment
    computed on each call), and `exposition()`, what the worker's /metrics serves: each
    establishment's text is rendered once per change of its figures and kept, so a scrape
    on the worker's event loop computes and formats only the establishments that changed
    since the last one (at national volume, a few per scrape), and joins the kept bytes of
    the others."""

    def __init__(
        self,
        establishments: Callable[[], Iterable[Establishment]],
        lag: LagSource | None = None,
    ) -> None:
        self._establishments = establishments
        self._lag = lag
        # FINESS → (the figures' version it was rendered from, its lines per family)
        self._rendered: dict[str, tuple[object, tuple[bytes, ...]]] = {}

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        unregistered = 0
        for est in self._establishments():
            if est.registry is None:
                # Counted (as `sunes report` does) but not exported per FINESS: made-up or
                # mistyped numbers must not grow /metrics; the alert names the problem.
                unregistered += 1
                continue
            _collect_establishment(est, families)
        yield from families.all()
        yield from self._pipeline(unregistered, self._lag)

    def exposition(
        self,
        establishments: Iterable[Establishment] | None = None,
        names: Collection[str] | None = None,
    ) -> bytes:
        """The text format of `collect()`, byte for byte (prometheus_client's
        `generate_latest` of a registry holding this collector). `establishments`: a scoped
        caller's (then no lag series); None: all of them, and the ones gone are forgotten.
        `names`: only the samples of those names, a family without any left out (what
        prometheus_client's `name[]` gives, `restricted`); an establishment is computed only
        when one of its families is named."""
        steps = self._exposition(establishments, names)
        while (text := _step(steps)) is None:
            pass
        return text

    async def serve(
        self,
        establishments: Iterable[Establishment] | None = None,
        names: Collection[str] | None = None,
    ) -> bytes:
        """`exposition()` on the worker's event loop: it gives the loop back (an await)
        whenever it has rendered establishments for SLICE_SECONDS, so that a scrape after many
        changes (a worker catching up, a restart) never stalls the apply loop for longer.
        Each establishment's lines are still rendered from one state of its figures; an
        establishment changed after its lines were rendered shows at the next scrape."""
        steps = self._exposition(establishments, names)
        while (text := _step(steps)) is None:
            await asyncio.sleep(0)
        return text

    def _exposition(
        self, establishments: Iterable[Establishment] | None, names: Collection[str] | None
    ) -> Generator[None, None, bytes]:
        """exposition(), yielding between slices of rendering (see serve)."""
        everyone = establishments is None
        shown = [i for i, name in enumerate(_NAMES) if names is None or name in names]
        counting = names is None or UNREGISTERED in names
        unregistered = 0
        kept: list[tuple[bytes, ...]] = []
        if shown or counting:
            chosen = list(self._establishments() if establishments is None else establishments)
            if shown:
                kept, chosen = yield from self._kept(chosen, forget=everyone)
            unregistered = sum(1 for est in chosen if est.registry is None)
        out: list[bytes] = []
        for i in shown:
            lines = [est_lines[i] for est_lines in kept]
            if names is None or any(lines):  # restricted: a family without samples is left out
                out.append(_HEADERS[i])
                out.extend(lines)
        lag = self._lag if everyone and (names is None or LAG in names) else None
        pipeline = list(self._pipeline(unregistered, lag))
        if names is not None:
            pipeline = list(restricted(pipeline, names))
        out.append(generate_latest(GivenFamilies(pipeline)))
        return b"".join(out)

    def _kept(
        self, chosen: list[Establishment], forget: bool
    ) -> Generator[None, None, tuple[list[tuple[bytes, ...]], list[Establishment]]]:
        """The lines of each registered establishment, rendered again only when its figures
        changed, yielding after each SLICE_SECONDS of rendering; `forget`: the kept text of
        the ones not chosen is dropped (they are gone). Also the chosen establishments still
        current at the end: while the loop ran, a rebalance may have dropped some (their new
        owner exports them: exported here too, a sum over workers would count them twice)."""
        kept: list[tuple[Establishment, tuple[bytes, ...]]] = []
        slice_end = time.perf_counter() + SLICE_SECONDS
        yielded = False
        for est in chosen:
            if est.registry is None:
                continue
            version = est.figures_version()
            cached = self._rendered.get(est.finess)
            if cached is None or cached[0] is not version:
                cached = (version, _render_establishment(est))
                self._rendered[est.finess] = cached
                if time.perf_counter() > slice_end:
                    yield
                    yielded = True
                    slice_end = time.perf_counter() + SLICE_SECONDS
            kept.append((est, cached[1]))
        if yielded:
            current = {id(est) for est in self._establishments()}
            chosen = [est for est in chosen if id(est) in current]
            kept = [(est, lines) for est, lines in kept if id(est) in current]
        if forget and len(self._rendered) > len(kept):  # one gone (revoked): forgotten
            present = {est.finess for est, _ in kept}
            for finess in self._rendered.keys() - present:
                del self._rendered[finess]
        return [lines for _, lines in kept], chosen

    @staticmethod
    def _pipeline(unregistered: int, lag_source: LagSource | None) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            UNREGISTERED,
            "Establishments with events but no registry record (no window, no target): "
            "their figures are in /indicators, not in these metrics.",
            value=unregistered,
        )
        if lag_source is not None:
            lag = GaugeMetricFamily(
                LAG,
                "Messages of an input partition not yet consumed by this worker.",
                labels=["topic", "partition"],
            )
            for (topic, partition), value in sorted(lag_source().items()):
                lag.add_metric([topic, str(partition)], value)
            yield lag


def _step(steps: Generator[None, None, bytes]) -> bytes | None:
    """One slice of a scrape: None while there is more to render, then its text."""
    try:
        next(steps)
    except StopIteration as done:
        text: bytes = done.value
        return text
    return None


def restricted(families: Iterable[Metric], names: Container[str]) -> Iterator[Metric]:
    """prometheus_client's `name[]` (its RestrictedRegistry, whatever the collector): each
    family with its samples of those names only (a counter's `x_total`, a histogram's
    `x_count`...), a family with none left out."""
    for family in families:
        samples = [sample for sample in family.samples if sample.name in names]
        if samples:
            kept = Metric(family.name, family.documentation, family.type)
            kept.samples = samples
            yield kept


class GivenFamilies(Collector):
    """Given families, for `generate_latest` (which formats what a collector yields)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _header(family: Metric) -> bytes:
    """The `# HELP` and `# TYPE` lines of a family, as generate_latest writes them."""
    return generate_latest(GivenFamilies([family]))


# The per-establishment families' headers and names, in _FAMILIES order (that of collect()).
_HEADERS = tuple(_header(family) for family in _Families().all())
_NAMES = tuple(name for name, _, _ in _FAMILIES.values())


def _render_establishment(est: Establishment) -> tuple[bytes, ...]:
    """An establishment's sample lines, one bytes per family of _FAMILIES (in its order)."""
    families = _Families()
    _collect_establishment(est, families)
    return tuple(_sample_lines(family) for family in families.all())


def _sample_lines(family: Metric) -> bytes:
    """The sample lines generate_latest writes for a gauge family of ours, written here at
    half its cost (it validates and escapes every label name of every sample): labels
    sorted by name, values escaped as it escapes them, no timestamp. Ours are all gauges with
    legacy label names (the tests compare both outputs byte for byte, and promtool reads it)."""
    lines = []
    for sample in family.samples:
        value = _go_float(sample.value)
        if sample.labels:
            labels = ",".join(
                f'{name}="{_escaped(text)}"' for name, text in sorted(sample.labels.items())
            )
            lines.append(f"{sample.name}{{{labels}}} {value}\n")
        else:
            lines.append(f"{sample.name} {value}\n")
    return "".join(lines).encode()


# prometheus_client's float format (its own text writer's; untyped there)
_go_float: Callable[[float], str] = floatToGoString


def _escaped(value: str) -> str:
    """A label value as prometheus_client escapes it."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def _collect_establishment(est: Establishment, f: _Families) -> None:
    finess, record, window = est.finess, est.registry, est.window()
    assert record is not None and window is not None  # registered
    f.info.add_metric([finess, record.finess_ej, record.region, record.window, record.name], 1)
    f.cme.add_metric([finess], 1 if record.cme_presentation else 0)
    f.window_start.add_metric([finess, window.name], _day_start(window.start))
    f.window_end.add_metric([finess, window.name], _day_start(window.end + timedelta(days=1)))
    for indicator in RATE_INDICATORS:
        value = est.calendar.target(indicator, record.window)
        if value is not None:
            f.target.add_metric([finess, indicator], value)
    watermark = est.watermark  # a scan of the aggregates: read once
    if watermark is not None:
        f.watermark.add_metric([finess], _day_start(watermark))

    now = est.now
    labels = {window.name: "funding_window"}
    if now is not None:
        f.now.add_metric([finess], _day_start(now))
        current = month_key(now)
        labels |= {current: "current_month", previous_month(current): "previous_month"}
    for key, period in labels.items():
        f.period_info.add_metric([finess, period, key], 1)

    rows = est.rows()
    for row in rows:
        name = labels.get(row.period)
        if name is not None:
            f.numerator.add_metric([finess, row.indicator, name], row.numerator)
            f.denominator.add_metric([finess, row.indicator, name], row.denominator)
    # Units of the exported periods only (a history of years has dozens of months)
    shown = [row for row in rows if row.period in labels]
    counts = establishment_unit_counts(finess, est.aggregates, shown, window, now, est.settings)
    for count in counts:
        name = labels.get(count.period)
        if name is not None:
            reason = count.reason or COUNTED_REASON
            f.units.add_metric([finess, count.indicator, name, count.status, reason], count.count)
    if now is not None:
        _collect_outlook(est, window, now, labels, rows, counts, f)


def _collect_outlook(
    est: Establishment,
    window: Window,
    now: date,
    labels: dict[str, str],
    rows: list[IndicatorRow],
    counts: list[UnitCount],
    f: _Families,
) -> None:
    """What is still to come: pending units' deadlines, the window's projection."""
    finess = est.finess
    # the figures with pending units (DS 4.1's correspondents have no deadline of their own)
    pending = {
        (c.indicator, c.period) for c in counts if c.status == PENDING and c.indicator != "DS4.1"
    }
    scanned = set(window.months()) | labels.keys()
    deadlines = next_deadlines(est, window, now, scanned) if pending else {}  # else no scan
    for (indicator, period), day in deadlines.items():
        name = labels.get(period)
        if name is not None and (indicator, period) in pending:
            f.pending_deadline.add_metric([finess, indicator, name], _day_start(day))
    by_period = tallies(counts)
    rated = {row.indicator for row in rows}  # DS 2.1 without a lab has no rate to project
    for indicator in RATE_INDICATORS:
        if indicator in NOT_PROJECTED or indicator not in rated:
            continue
        months = {p: t for (i, p), t in by_period.items() if i == indicator and p[:1].isdigit()}
        so_far = by_period.get((indicator, window.name), Tally())
        projection = project(window, now, so_far, months)
        if projection is None:
            continue
        f.projected.add_metric([finess, indicator], projection.projected_ratio)
        f.best_case.add_metric([finess, indicator], projection.best_case_ratio)
        f.to_come.add_metric([finess, indicator], projection.to_come)


def next_deadlines(
    est: Establishment, window: Window, now: date, of_months: Container[str] | None = None
) -> dict[tuple[str, str], date]:
    """(indicator, period) → the earliest deadline of its pending units, months and window,
    read from the aggregates' uncounted units (DS 4.1's correspondents are not there); only
    of `of_months` when given (which must hold the window's months for its date to be whole)."""
    months = set(window.months())
    earliest: dict[tuple[str, str], date] = {}
    for key, _ in est.aggregates.uncounted(of_months):
        day = date.fromisoformat(key.deadline)
        if status_of(key.reason, day, now) != PENDING:
            continue
        periods = [key.month, window.name] if key.month in months else [key.month]
        for period in periods:
            known = earliest.get((key.indicator, period))
            if known is None or day < known:
                earliest[(key.indicator, period)] = day
    return earliest
