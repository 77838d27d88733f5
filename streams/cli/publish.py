"""`sunes publish`: validate an NDJSON file line by line and publish it to the input topics."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from streams.cli.errors import CliError, Exit
from streams.cli.options import (
    add_kafka_options,
    brokers_from,
    client_profile_from,
    topic_names_from,
)
from streams.cli.producer import Publisher, route
from streams.kafka_clients import (
    BOOTSTRAP_ENV,
    Security,
    client_overrides_for,
    ensure_topics,
    security_from_env,
)
from streams.worker.bundles import MAX_EVENT_BYTES
from topics.errors import TOO_LARGE
from topics.names import CONTRACT_TOPICS, TopicNames
from topics.validation import InvalidRecord, parse_record


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="publish an NDJSON file of events to the Kafka input topics",
        description="Validate each line against the event contract v1 and publish the valid "
        "ones, keyed by FINESS, to the topic of their type (establishment records to the "
        "compacted registry topic). Invalid lines are reported with their line number and "
        "are not published unless --include-invalid is given; a line over "
        f"{MAX_EVENT_BYTES:,} bytes, which a worker could not carry, is never published.",
        epilog=f"exit status: {Exit.OK} all published; {Exit.INVALID_INPUT} invalid lines were "
        f"found; {Exit.USAGE} usage error (missing file, no brokers, a bad setting); "
        f"{Exit.KAFKA} Kafka error; {Exit.INTERRUPTED} interrupted. TLS and SASL: the "
        "SUNES_TLS* and SUNES_SASL_* variables, as for the worker",
    )
    parser.add_argument("file", type=Path, help="NDJSON file, e.g. from `sunes simulate --output`")
    add_kafka_options(parser)
    parser.add_argument(
        "--include-invalid",
        action="store_true",
        help="publish invalid lines too, as they are, to --invalid-topic (to exercise the "
        "dead-letter path)",
    )
    parser.add_argument(
        "--invalid-topic",
        default=None,
        metavar="TOPIC",
        help="where --include-invalid sends invalid lines [default: the stays topic]",
    )
    parser.add_argument(
        "--max-reported",
        type=int,
        default=100,
        metavar="N",
        help="report at most N invalid lines one by one [default 100]",
    )
    parser.set_defaults(handler=run)


@dataclass(slots=True)
class PublishResult:
    published: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    invalid: int = 0
    too_large: int = 0  # of the invalid lines: over MAX_EVENT_BYTES, never sent
    elapsed: float = 0.0
    interrupted: bool = False


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CliError(
            f"{path} {what}: give the NDJSON file to publish, e.g. one written by "
            f"`sunes simulate --output {path}`"
        )
    bootstrap = brokers_from(args)
    if bootstrap is None:
        raise CliError(f"no Kafka brokers: give --brokers HOST:PORT or set {BOOTSTRAP_ENV}")
    topics = topic_names_from(args)
    invalid_topic = args.invalid_topic or topics.stays
    result = asyncio.run(
        publish_file(
            path,
            bootstrap,
            client_overrides_for(client_profile_from(args)),
            security=security_from_env(),
            include_invalid=args.include_invalid,
            topics=topics,
            invalid_topic=invalid_topic,
            create_topics=args.create_topics,
            max_reported=args.max_reported,
        )
    )
    _print_summary(result, path, bootstrap, args.include_invalid, invalid_topic)
    if result.interrupted:
        return Exit.INTERRUPTED
    return Exit.INVALID_INPUT if result.invalid else Exit.OK


async def publish_file(
    path: Path,
    bootstrap_servers: str,
    overrides: dict[str, Any],
    *,
    security: Security | None = None,
    include_invalid: bool = False,
    topics: TopicNames = CONTRACT_TOPICS,
    invalid_topic: str | None = None,
    create_topics: bool = True,
    max_reported: int = 100,
    out: TextIO | None = None,
) -> PublishResult:
    out = out or sys.stderr  # looked up now: the caller may have redirected it
    result = PublishResult()
    began = time.monotonic()
    if create_topics:
        await ensure_topics(bootstrap_servers, security, topics=topics.input_specs())
    progress = Progress(path.stat().st_size, out)
    done_bytes = 0
    async with Publisher(bootstrap_servers, overrides, security=security) as publisher:
        try:
            with path.open("rb") as lines:
                for number, line in enumerate(lines, start=1):
                    done_bytes += len(line)
                    value = line.rstrip(b"\r\n")
                    if not value.strip():
                        continue
                    result.lines += 1
                    try:
                        if len(value) > MAX_EVENT_BYTES:
                            raise _too_large(len(value))
                        topic, key = route(parse_record(value), topics)
                    except InvalidRecord as exc:
                        result.invalid += 1
                        if result.invalid <= max_reported:
                            progress.clear()
                            print(f"{path}:{number}: invalid ({exc.code}): {exc.reason}", file=out)
                        if exc.code == TOO_LARGE:
                            result.too_large += 1
                            continue  # not even with --include-invalid: it cannot be carried
                        if not include_invalid:
                            continue
                        topic, key = invalid_topic or topics.stays, None
                    await publisher.send(topic, value, key)
                    progress.update(done_bytes, result.lines)
        except asyncio.CancelledError:  # Ctrl-C: flush what was sent, then report
            result.interrupted = True
    progress.clear()
    result.published = publisher.published
    result.elapsed = time.monotonic() - began
    hidden = result.invalid - max(0, max_reported)
    if hidden > 0:
        more = "more " if max_reported > 0 else ""
        print(f"... and {hidden:,} {more}invalid line(s) not shown (--max-reported)", file=out)
    return result


def _too_large(size: int) -> InvalidRecord:
    return InvalidRecord(
        TOO_LARGE,
        f"the line is {size:,} bytes, more than the {MAX_EVENT_BYTES:,} bytes a worker can "
        "carry (streams.worker.bundles.MAX_EVENT_BYTES): not published; split the event",
    )


def _print_summary(
    result: PublishResult, path: Path, bootstrap: str, include_invalid: bool, invalid_topic: str
) -> None:
    total = sum(result.published.values())
    rate = total / result.elapsed if result.elapsed > 0 else 0.0
    state = " (interrupted)" if result.interrupted else ""
    lines = [
        f"published {total:,} message(s) from {path} to {bootstrap} in {result.elapsed:.1f} s "
        f"({rate:,.0f} events/s){state}"
    ]
    lines += [f"  {topic:<28}{count:>10,}" for topic, count in sorted(result.published.items())]
    if result.too_large:
        lines.append(
            f"{result.too_large:,} line(s) over {MAX_EVENT_BYTES:,} bytes not published: a "
            "worker could not carry them"
        )
    sent_invalid = result.invalid - result.too_large
    if sent_invalid and include_invalid:
        lines.append(
            f"{sent_invalid:,} invalid line(s) published as they are to {invalid_topic} "
            "(for the dead-letter path)"
        )
    elif sent_invalid:
        lines.append(
            f"{sent_invalid:,} invalid line(s) not published; fix them at the producer, or "
            "pass --include-invalid to exercise the dead-letter path"
        )
    print("\n".join(lines), file=sys.stderr)


class Progress:
    """A one-line progress bar on a terminal; silent when the stream is not a TTY."""

    WIDTH = 30
    EVERY = 0.2  # seconds between redraws

    def __init__(self, total_bytes: int, stream: TextIO) -> None:
        self.total = max(1, total_bytes)
        self.stream = stream
        self.enabled = stream.isatty()
        self.began = time.monotonic()
        self._drawn_at = 0.0
        self._visible = False

    def update(self, done_bytes: int, messages: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._drawn_at < self.EVERY:
            return
        self._drawn_at = now
        share = min(1.0, done_bytes / self.total)
        filled = int(share * self.WIDTH)
        rate = messages / max(1e-9, now - self.began)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {share:4.0%} {messages:,} lines {rate:,.0f}/s")
        self.stream.flush()
        self._visible = True

    def clear(self) -> None:
        if self._visible:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._visible = False
