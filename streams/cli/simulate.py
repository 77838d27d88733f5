"""`sunes simulate`: synthetic SUN-ES traffic to an NDJSON file or straight to Kafka."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from streams.cli.errors import CliError, Exit
from streams.cli.options import (
    add_kafka_options,
    brokers_from,
    client_profile_from,
    topic_names_from,
)
from streams.cli.producer import Publisher
from streams.kafka_clients import (
    BOOTSTRAP_ENV,
    Security,
    client_overrides_for,
    ensure_topics,
    security_from_env,
)
from topics.names import CONTRACT_TOPICS, TopicNames
from topics.records import WINDOWS

if TYPE_CHECKING:
    from simulator.config import SimulationConfig
    from simulator.message import SimulatedMessage

# The simulator is imported when used: `sunes` must start where only the processor is
# installed (the container image).
DEFAULT_DAYS = 30
# simulator.orders.ORDERS, spelled out so that the parser needs no simulator.
ORDERS = ("live", "backfill", "shuffled")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="generate realistic synthetic events (to a file or to Kafka)",
        description="Generate SUN-ES traffic, deterministic for a seed: one registry record "
        "per establishment, then stays, documents, DMP deposits and MSSanté messages in "
        "roughly chronological order (or see --order), with duplicates, late and "
        "out-of-order events, corrections, cancellations, replacements, deletions, refused "
        "deposits and a share of invalid messages. Establishment #1 is clearly under target, "
        "#2 clearly above.",
        epilog=f"exit status: {Exit.OK} done; {Exit.USAGE} usage error; {Exit.KAFKA} Kafka "
        f"error; {Exit.INTERRUPTED} interrupted. TLS and SASL towards Kafka: the SUNES_TLS* "
        "and SUNES_SASL_* variables, as for the worker",
    )
    traffic = parser.add_argument_group("traffic")
    traffic.add_argument("--establishments", type=int, default=4, metavar="N", help="[default 4]")
    traffic.add_argument(
        "--windows",
        help="funding windows given to the establishments in turn [default F2,F3,F4,F1]",
    )
    traffic.add_argument(
        "--stays-per-day",
        type=float,
        default=20.0,
        metavar="X",
        help="admissions per day and establishment [default 20]",
    )
    traffic.add_argument(
        "--days",
        type=int,
        metavar="D",
        help=f"days of admissions [default {DEFAULT_DAYS}; endless when --duration is given]",
    )
    traffic.add_argument(
        "--start",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="first day for every establishment [default: each one's funding window start]",
    )
    traffic.add_argument("--seed", type=int, default=0, help="same seed, same messages [default 0]")
    traffic.add_argument(
        "--invalid-fraction",
        type=float,
        default=0.01,
        metavar="F",
        help="share of all messages that break the contract [default 0.01]",
    )
    traffic.add_argument(
        "--duplicate-fraction",
        type=float,
        default=0.02,
        metavar="F",
        help="share of valid events re-sent with the same event_id [default 0.02]",
    )
    traffic.add_argument(
        "--reorder-window",
        type=int,
        metavar="N",
        help="messages leave their chronological place by at most N positions [default 32]",
    )
    traffic.add_argument(
        "--order",
        choices=ORDERS,
        default="live",
        help="the order the feed arrives in, registry records always first: live = roughly "
        "chronological; backfill = every stays message, then every DMP one, then every MSS "
        "one (systems replaying their history); shuffled = every event in a random order "
        "(from --seed). backfill and shuffled need --days [default live]",
    )
    traffic.add_argument("--max-messages", type=int, metavar="N", help="stop after N messages")
    output = parser.add_argument_group("output (one of)")
    output.add_argument(
        "--output", "-o", type=Path, metavar="FILE.ndjson", help="write NDJSON (- for stdout)"
    )
    add_kafka_options(parser)
    pacing = parser.add_argument_group("pacing")
    pacing.add_argument(
        "--rate", type=float, default=0.0, metavar="EVENTS_PER_S", help="0 = as fast as possible"
    )
    pacing.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    parser.set_defaults(handler=run)


@dataclass(slots=True)
class SimulationSummary:
    per_topic: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def total(self) -> int:
        return sum(self.per_topic.values())

    @property
    def invalid(self) -> int:
        from simulator.message import INVALID_PREFIX

        return sum(n for label, n in self.labels.items() if label.startswith(INVALID_PREFIX))

    def count(self, message: SimulatedMessage) -> None:
        self.per_topic[message.topic] += 1
        self.labels[message.label] += 1


class Pacer:
    """Keeps a stream at `rate` messages per second and ends it after `duration` seconds."""

    def __init__(self, rate: float, duration: float | None) -> None:
        self.rate = rate
        self.duration = duration
        self.began = time.monotonic()

    def expired(self) -> bool:
        return self.duration is not None and time.monotonic() - self.began >= self.duration

    def delay(self, sent: int) -> float:
        """Seconds to wait before sending message number `sent` (0-based)."""
        if self.rate <= 0:
            return 0.0
        return self.began + sent / self.rate - time.monotonic()


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    """The simulation settings, or ValueError saying which option is wrong."""
    from simulator.config import Messiness, SimulationConfig

    windows: tuple[str, ...] = ()  # the simulator's default spread
    if args.windows is not None:
        windows = tuple(w.strip().upper() for w in args.windows.split(",") if w.strip())
        if not windows:
            raise ValueError(f"--windows needs at least one of {', '.join(WINDOWS)}")
    days = args.days
    if days is None and args.duration is None:
        days = DEFAULT_DAYS
    messiness = replace(
        Messiness(),
        invalid_fraction=args.invalid_fraction,
        duplicate_fraction=args.duplicate_fraction,
    )
    if args.reorder_window is not None:
        messiness = replace(messiness, reorder_window=args.reorder_window)
    return SimulationConfig(
        establishments=args.establishments,
        windows=windows,
        stays_per_day=args.stays_per_day,
        start=args.start,
        days=days,
        seed=args.seed,
        messiness=messiness,
    )


def run(args: argparse.Namespace) -> int:
    from simulator.generator import generate
    from simulator.orders import in_order

    bootstrap = brokers_from(args)
    problem = None
    if args.output is not None and args.brokers:
        problem = "give either --output or --brokers, not both"
    elif args.output is None and bootstrap is None:
        problem = f"give --output FILE.ndjson, or --brokers HOST:PORT (or {BOOTSTRAP_ENV})"
    elif args.rate < 0 or (args.duration is not None and args.duration <= 0):
        problem = "--rate must be 0 or more and --duration above 0"
    try:
        config = config_from_args(args)
    except ValueError as exc:
        problem = problem or str(exc)
    else:
        if args.order != "live" and config.days is None:
            problem = problem or (
                f"--order {args.order} needs the whole history before its first message, "
                "and without --days the stream is endless: give --days D "
                "(--duration then only bounds the sending time)"
            )
    if problem:
        raise CliError(problem, Exit.USAGE)
    security = None if args.output is not None else security_from_env()
    # Before the pacer starts: a backfill or a shuffle first generates the whole history.
    messages = in_order(generate(config), args.order, config.seed)
    if args.max_messages is not None:
        messages = itertools.islice(messages, args.max_messages)
    pacer = Pacer(args.rate, args.duration)
    if args.output is not None:
        summary = _to_file(messages, args.output, pacer)
        where = "stdout" if str(args.output) == "-" else str(args.output)
    else:
        assert bootstrap is not None
        summary = asyncio.run(
            publish_messages(
                messages,
                bootstrap,
                client_overrides_for(client_profile_from(args)),
                security=security,
                pacer=pacer,
                create_topics=args.create_topics,
                topics=topic_names_from(args),
            )
        )
        where = bootstrap
    print_summary(summary, where)
    return Exit.INTERRUPTED if summary.interrupted else Exit.OK


def _to_file(messages: Iterable[SimulatedMessage], path: Path, pacer: Pacer) -> SimulationSummary:
    if str(path) == "-":
        return _write(messages, sys.stdout.buffer, pacer)
    with path.open("wb", buffering=1 << 20) as out:
        return _write(messages, out, pacer)


def _write(messages: Iterable[SimulatedMessage], out: BinaryIO, pacer: Pacer) -> SimulationSummary:
    summary = SimulationSummary()
    try:
        for message in _paced(messages, pacer, summary):
            out.write(message.value + b"\n")
            summary.count(message)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.elapsed = time.monotonic() - pacer.began
    return summary


def _paced(
    messages: Iterable[SimulatedMessage], pacer: Pacer, summary: SimulationSummary
) -> Iterator[SimulatedMessage]:
    for message in messages:
        if pacer.expired():
            return
        wait = pacer.delay(summary.total)
        if wait > 0.001:
            time.sleep(wait)
            if pacer.expired():  # its time came after the end: one too many otherwise
                return
        yield message


async def publish_messages(
    messages: Iterable[SimulatedMessage],
    bootstrap_servers: str,
    overrides: dict[str, Any] | None = None,
    *,
    security: Security | None = None,
    pacer: Pacer | None = None,
    create_topics: bool = True,
    topics: TopicNames = CONTRACT_TOPICS,
) -> SimulationSummary:
    """Publish simulated messages (invalid ones too, raw, to their topic), paced.

    Usable from other code, e.g. a demo that runs the simulator next to the processor.
    The simulator names the contract's topics; `topics` says what they are called here.
    """
    pacer = pacer or Pacer(0.0, None)
    summary = SimulationSummary()
    if create_topics:
        await ensure_topics(bootstrap_servers, security, topics=topics.input_specs())
    publisher = Publisher(
        bootstrap_servers, overrides, security=security, client_id="sunes-simulate"
    )
    async with publisher:
        try:
            for message in messages:
                if pacer.expired():
                    break
                wait = pacer.delay(summary.total)
                if wait > 0.001:
                    await asyncio.sleep(wait)
                    if pacer.expired():  # its time came after the end
                        break
                await publisher.send(topics.named(message.topic), message.value, message.key)
                summary.count(message)
        except asyncio.CancelledError:  # Ctrl-C: flush what was sent, then report
            summary.interrupted = True
    # What the broker acknowledged, rather than what was handed to the producer.
    summary.per_topic = Counter(publisher.published)
    summary.elapsed = time.monotonic() - pacer.began
    return summary


def print_summary(summary: SimulationSummary, where: str) -> None:
    from simulator.message import DUPLICATE, INVALID_PREFIX

    rate = summary.total / summary.elapsed if summary.elapsed > 0 else 0.0
    state = " (interrupted)" if summary.interrupted else ""
    lines = [
        f"simulated {summary.total:,} message(s) to {where} in {summary.elapsed:.1f} s "
        f"({rate:,.0f}/s){state}"
    ]
    lines += [f"  {topic:<28}{count:>10,}" for topic, count in sorted(summary.per_topic.items())]
    kinds = sorted(
        (label.removeprefix(INVALID_PREFIX), n)
        for label, n in summary.labels.items()
        if label.startswith(INVALID_PREFIX)
    )
    detail = ", ".join(f"{kind} {n:,}" for kind, n in kinds)
    lines.append(f"invalid: {summary.invalid:,}" + (f" ({detail})" if detail else ""))
    lines.append(f"duplicates (same event_id re-sent): {summary.labels[DUPLICATE]:,}")
    print("\n".join(lines), file=sys.stderr)
