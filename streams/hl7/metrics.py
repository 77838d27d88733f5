"""The HL7 listener's Prometheus metrics and its small HTTP port: /metrics and /health.

Labels carry outcomes, reason codes and topics only: never a patient, a stay, an INS, a
sender's control id or an address. A reason code that is not a short snake_case word is
counted as `other`, so that no label can grow with the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_REASON = re.compile(r"[a-z][a-z0-9_]{0,47}")

# What happened to a message (label `outcome`).
ACCEPTED = "accepted"  # AA, events published
IGNORED = "ignored"  # AA, nothing to publish (the reason says why)
REFUSED = "refused"  # AE or AR, dead-lettered
KAFKA_ERROR = "kafka_error"  # Kafka did not acknowledge: no ACK, connection closed


def reason_label(reason: str | None) -> str:
    if not reason:
        return ""
    return reason if _REASON.fullmatch(reason) else "other"


class ListenerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "sunes_hl7_messages",
            "HL7 messages answered or dropped, by outcome, ACK code and reason code",
            ["outcome", "ack", "reason"],
            registry=self.registry,
        )
        self.events = Counter(
            "sunes_hl7_events_published",
            "contract events published and acknowledged by Kafka, by topic",
            ["topic"],
            registry=self.registry,
        )
        self.deadletters = Counter(
            "sunes_hl7_deadletters",
            "messages written to the HL7 dead-letter topic, by reason code",
            ["reason"],
            registry=self.registry,
        )
        self.cut_frames = Counter(
            "sunes_hl7_frames_cut",
            "frames a connection ended inside, or that a new start block abandoned (not used)",
            registry=self.registry,
        )
        self.connections = Counter(
            "sunes_hl7_connections", "MLLP connections accepted", registry=self.registry
        )
        self.open_connections = Gauge(
            "sunes_hl7_connections_open", "MLLP connections open now", registry=self.registry
        )
        self.purged = Counter(
            "sunes_hl7_state_purged",
            "entries of the converter's state deleted past the retention horizon, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "sunes_hl7_message_seconds",
            "from a frame's last byte to its ACK written (conversion and Kafka included)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def message(self, outcome: str, ack: str, reason: str | None) -> None:
        self.messages.labels(outcome, ack, reason_label(reason)).inc()

    def state_purged(self, kind: str, count: int) -> None:
        self.purged.labels(kind).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def start_http(
    metrics: ListenerMetrics, healthy: Callable[[], bool], host: str, port: int
) -> web.AppRunner:
    """Serve /metrics and /health (200 while the listener serves and Kafka is connected)."""

    async def get_metrics(_: web.Request) -> web.Response:
        response = web.Response(body=metrics.render())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    async def get_health(_: web.Request) -> web.Response:
        ok = healthy()
        return web.json_response({"status": "ok" if ok else "starting"}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/health", get_health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
