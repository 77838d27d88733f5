"""`sunes hl7 listen`: the MLLP server that turns HL7 v2 messages into contract events in Kafka."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from streams.cli.errors import CliError, ConfigError, Exit
from streams.cli.options import (
    add_hl7_mapping_option,
    add_kafka_options,
    brokers_from,
    client_profile_from,
    topic_names_from,
    whole_number,
)
from streams.kafka_clients import BOOTSTRAP_ENV, LOCAL_BOOTSTRAP, client_overrides_for

if TYPE_CHECKING:
    from streams.hl7.mapping import Hl7Mapping

DEFAULT_PORT = 2575  # IANA's port for HL7 over MLLP
DEFAULT_METRICS_PORT = 6068
DEFAULT_STATE_DIR = "var/sunes-hl7"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    env: Mapping[str, str] = os.environ,
) -> None:
    from streams.hl7.listener import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_MESSAGE_BYTES
    from streams.hl7.publishing import DEFAULT_ACK_TIMEOUT, HL7_DEADLETTER

    parser = subparsers.add_parser(
        "listen",
        help="an MLLP server: HL7 v2 messages in, contract events to Kafka, ACK when Kafka has them",
        description="Receive HL7 v2.5/2.6 messages over MLLP (ADT A03/A13, MDM T02/T10/T04, "
        "ORU R01, ZAM Z01; see docs/hl7.md), convert each into contract v1 events, publish "
        "them keyed by FINESS and answer AA once Kafka has acknowledged them. A message that "
        f"cannot be used gets AE/AR with an ERR that says why, and goes to {HL7_DEADLETTER} "
        "with the reason in headers. When Kafka does not acknowledge, no ACK is sent and the "
        "connection is closed, so that the sender re-sends.",
        epilog=f"exit status: {Exit.OK} stopped by SIGTERM/SIGINT; {Exit.USAGE} a bad setting "
        f"(the mapping, the TLS files, the state directory); {Exit.KAFKA} Kafka could not be "
        "reached. TLS and SASL towards Kafka: the SUNES_TLS* and SUNES_SASL_* variables",
    )
    group = parser.add_argument_group("MLLP")
    group.add_argument("--host", default=env.get("SUNES_HL7_HOST", "127.0.0.1"),
                       help="bind address [env SUNES_HL7_HOST, default 127.0.0.1; 0.0.0.0 for "
                       "every interface]")  # fmt: skip
    group.add_argument("--port", type=whole_number("SUNES_HL7_PORT", "--port"),
                       default=env.get("SUNES_HL7_PORT") or str(DEFAULT_PORT),
                       help=f"[env SUNES_HL7_PORT, default {DEFAULT_PORT}]")  # fmt: skip
    group.add_argument("--tls-cert", type=Path, default=env.get("SUNES_HL7_TLS_CERT") or None,
                       metavar="PEM", help="serve MLLP over TLS with this certificate chain "
                       "[env SUNES_HL7_TLS_CERT]")  # fmt: skip
    group.add_argument("--tls-key", type=Path, default=env.get("SUNES_HL7_TLS_KEY") or None,
                       metavar="PEM", help="its private key [env SUNES_HL7_TLS_KEY]")  # fmt: skip
    group.add_argument("--tls-client-ca", type=Path,
                       default=env.get("SUNES_HL7_TLS_CLIENT_CA") or None, metavar="PEM",
                       help="require client certificates signed by these CAs "
                       "[env SUNES_HL7_TLS_CLIENT_CA]")  # fmt: skip
    group.add_argument("--max-message-bytes",
                       type=whole_number("SUNES_HL7_MAX_MESSAGE_BYTES", "--max-message-bytes"),
                       default=env.get("SUNES_HL7_MAX_MESSAGE_BYTES") or str(DEFAULT_MAX_MESSAGE_BYTES),
                       metavar="N", help="a bigger message is refused (AR, too_large) "
                       f"[env SUNES_HL7_MAX_MESSAGE_BYTES, default {DEFAULT_MAX_MESSAGE_BYTES}]")  # fmt: skip
    group.add_argument("--max-in-flight",
                       type=whole_number("SUNES_HL7_MAX_IN_FLIGHT", "--max-in-flight"),
                       default=env.get("SUNES_HL7_MAX_IN_FLIGHT") or str(DEFAULT_MAX_IN_FLIGHT),
                       metavar="N", help="messages converted and published at once, over all "
                       f"connections [env SUNES_HL7_MAX_IN_FLIGHT, default {DEFAULT_MAX_IN_FLIGHT}]")  # fmt: skip
    group.add_argument("--ack-timeout", type=whole_number("SUNES_HL7_ACK_TIMEOUT", "--ack-timeout"),
                       default=env.get("SUNES_HL7_ACK_TIMEOUT") or str(int(DEFAULT_ACK_TIMEOUT)),
                       metavar="SECONDS", help="how long a message waits for Kafka's "
                       "acknowledgement; then it gets no ACK and its connection is closed, so "
                       "that the sender re-sends [env SUNES_HL7_ACK_TIMEOUT, default "
                       f"{int(DEFAULT_ACK_TIMEOUT)}]")  # fmt: skip
    group = parser.add_argument_group("conversion")
    add_hl7_mapping_option(parser, env)
    group.add_argument("--state-dir", type=Path,
                       default=env.get("SUNES_HL7_STATE_DIR", DEFAULT_STATE_DIR),
                       help="where the converter keeps its state on disk (RocksDB): admissions, "
                       "the documents each message carried for the ZAMs that come later "
                       f"[env SUNES_HL7_STATE_DIR, default {DEFAULT_STATE_DIR}]")  # fmt: skip
    group.add_argument("--retention-days",
                       type=whole_number("SUNES_RETENTION_DAYS", "--retention-days"),
                       default=env.get("SUNES_RETENTION_DAYS") or "3653", metavar="DAYS",
                       help="state entries not written for this many days leave it, as the "
                       "worker refuses events that old [env SUNES_RETENTION_DAYS, default 3653]")  # fmt: skip
    group = parser.add_argument_group("monitoring")
    group.add_argument("--metrics-host", default=env.get("SUNES_HL7_METRICS_HOST", "127.0.0.1"),
                       help="bind address of /metrics and /health [env SUNES_HL7_METRICS_HOST]")  # fmt: skip
    group.add_argument("--metrics-port", type=whole_number("SUNES_HL7_METRICS_PORT", "--metrics-port"),
                       default=env.get("SUNES_HL7_METRICS_PORT") or str(DEFAULT_METRICS_PORT),
                       help=f"[env SUNES_HL7_METRICS_PORT, default {DEFAULT_METRICS_PORT}]")  # fmt: skip
    group.add_argument("--loglevel", default="warning",
                       choices=("debug", "info", "warning", "error"))  # fmt: skip
    add_kafka_options(parser, env, fallback_brokers=LOCAL_BOOTSTRAP)
    parser.set_defaults(handler=run)


def server_tls(
    cert: Path | None, key: Path | None, client_ca: Path | None
) -> ssl.SSLContext | None:
    """The MLLP server's TLS context, or None for plain TCP; ConfigError naming the bad flag."""
    if cert is None and key is None and client_ca is None:
        return None
    if cert is None:
        raise ConfigError("--tls-key / --tls-client-ca need --tls-cert (the server certificate)")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-client-ca", client_ca)):
        if path is not None and not path.is_file():
            raise ConfigError(f"{flag} {path}: not a file; give a PEM file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"--tls-cert / --tls-key: cannot load them: {exc}") from exc
    return context


def run(args: argparse.Namespace) -> int:
    from streams.hl7.mapping import load_mapping

    bootstrap = brokers_from(args, fallback=LOCAL_BOOTSTRAP)
    if bootstrap is None:
        raise CliError(f"no Kafka brokers: give --brokers HOST:PORT or set {BOOTSTRAP_ENV}")
    for flag in ("max_message_bytes", "max_in_flight", "ack_timeout", "retention_days"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be at least 1")
    tls = server_tls(args.tls_cert, args.tls_key, args.tls_client_ca)
    mapping = load_mapping(args.mapping)
    logging.basicConfig(
        level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(_serve(args, bootstrap, mapping, tls))


async def _serve(
    args: argparse.Namespace, bootstrap: str, mapping: Hl7Mapping, tls: ssl.SSLContext | None
) -> int:
    from streams.hl7.conversion import Hl7Converter
    from streams.hl7.listener import Hl7Listener
    from streams.hl7.metrics import ListenerMetrics, start_http
    from streams.hl7.publishing import Hl7Publisher, hl7_deadletter_spec
    from streams.hl7.state_store import RocksStore
    from streams.kafka_clients import ensure_topics, security_from_env

    security = security_from_env()
    topics = topic_names_from(args)
    if args.create_topics:
        await ensure_topics(
            bootstrap, security, (*topics.input_specs(), hl7_deadletter_spec(topics))
        )
    store = RocksStore(args.state_dir)
    publisher = Hl7Publisher(
        bootstrap,
        client_overrides_for(client_profile_from(args)),
        security=security,
        topics=topics,
        ack_timeout=args.ack_timeout,
    )
    metrics = ListenerMetrics()
    listener = Hl7Listener(
        Hl7Converter(mapping, store, args.retention_days, metrics.state_purged),
        publisher,
        metrics,
        max_message_bytes=args.max_message_bytes,
        max_in_flight=args.max_in_flight,
    )
    try:
        await publisher.start()  # PublishError (exit status 3) names what to check
    except BaseException:
        store.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = None
    try:
        runner = await start_http(metrics, listener.healthy, args.metrics_host, args.metrics_port)
        host, port = await listener.start(args.host, args.port, tls)
        scheme = "MLLP over TLS" if tls else "MLLP"
        print(
            f"sunes hl7 listen: {scheme} on {host}:{port}, Kafka {bootstrap}, metrics on "
            f"http://{args.metrics_host}:{args.metrics_port}/metrics",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    except OSError as exc:  # a port in use
        raise ConfigError(f"cannot listen: {exc}") from exc
    finally:
        await listener.stop()
        if runner is not None:
            await runner.cleanup()
        await publisher.stop()
        store.close()
    return Exit.OK
