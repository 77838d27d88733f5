"""Every Kafka client of the product has the same settings: one `Security` from the SUNES_TLS* /
SUNES_SASL_* variables for the worker, `sunes publish` and `sunes simulate`; the password in no
repr and no log line. (Against a real SASL_SSL broker: tests/streams/brokers/test_sasl_kafka.py.)
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import pytest

from streams.cli import main
from streams.cli import publish as publish_command
from streams.cli import simulate as simulate_command
from streams.cli.errors import ConfigError
from streams.cli.producer import Publisher
from streams.kafka_clients import Security, aiokafka_security, security_from_env
from streams.worker.config import WorkerConfig

PASSWORD = "s3cret-Pa55word"
SASL_ENV = {
    "SUNES_SASL_MECHANISM": "SCRAM-SHA-512",
    "SUNES_SASL_USERNAME": "sunes",
    "SUNES_SASL_PASSWORD": PASSWORD,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("SUNES_TLS", "SUNES_TLS_CA_FILE", "SUNES_TLS_CERT_FILE", "SUNES_TLS_KEY_FILE",
                 *SASL_ENV, "KAFKA_BOOTSTRAP_SERVERS", "SUNES_BROKERS", "SUNES_CLIENT_PROFILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_password_is_in_no_repr() -> None:
    security = Security(sasl_mechanism="PLAIN", sasl_username="sunes", sasl_password=PASSWORD)
    assert PASSWORD not in repr(security)
    assert "sunes" in repr(security)  # the rest is still there to read
    config = WorkerConfig(store="memory://", security=security)
    assert PASSWORD not in repr(config)
    assert PASSWORD not in str(config)


def test_security_from_env(clean_env: pytest.MonkeyPatch) -> None:
    assert security_from_env({}) == Security()
    security = security_from_env({**SASL_ENV, "SUNES_TLS": "1"})
    assert security.protocol == "SASL_SSL"
    assert (security.sasl_username, security.sasl_password) == ("sunes", PASSWORD)
    assert security_from_env({"SUNES_TLS": "yes"}).protocol == "SSL"
    assert security_from_env(SASL_ENV).protocol == "SASL_PLAINTEXT"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SUNES_SASL_MECHANISM": "GSSAPI"}, "SUNES_SASL_MECHANISM='GSSAPI' is not supported"),
        ({"SUNES_SASL_MECHANISM": "PLAIN"}, "SASL needs a mechanism, a username and a password"),
        ({"SUNES_TLS": "1", "SUNES_TLS_CA_FILE": "/nowhere/ca.pem"}, "SUNES_TLS_CA_FILE="),
    ],
)
def test_a_wrong_security_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as error:
        security_from_env(env)
    assert PASSWORD not in str(error.value)


def test_aiokafka_keywords_for_each_protocol() -> None:
    assert aiokafka_security(Security()) == {}
    sasl = Security(sasl_mechanism="SCRAM-SHA-512", sasl_username="u", sasl_password="p")
    assert aiokafka_security(sasl) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    tls = aiokafka_security(Security(tls=True))
    assert tls["security_protocol"] == "SSL"
    assert isinstance(tls["ssl_context"], ssl.SSLContext)


def test_the_publisher_hands_the_security_to_its_producer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiokafka

    seen: dict[str, Any] = {}

    class Producer:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

        async def start(self) -> None:
            return None

        async def stop(self) -> None:
            return None

        async def flush(self) -> None:
            return None

    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", Producer)
    sasl = Security(sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p")
    import asyncio

    async def start_and_stop() -> None:
        async with Publisher("k:9092", {}, security=sasl):
            pass

    asyncio.run(start_and_stop())
    assert seen["security_protocol"] == "SASL_PLAINTEXT"
    assert seen["sasl_plain_password"] == "p"
    assert seen["acks"] == "all"  # the producer defaults are still there


class Captured:
    """Stands for Publisher and ensure_topics: records the security each one was given."""

    securities: list[Security | None]

    def __init__(self) -> None:
        self.securities = []

    async def ensure_topics(self, bootstrap: str, security: Security | None, **_: Any) -> list[str]:
        self.securities.append(security)
        return []

    def publisher(self, *args: Any, security: Security | None = None, **_: Any) -> Any:
        self.securities.append(security)
        from collections import Counter

        class Fake:
            def __init__(self) -> None:
                self.published: Counter[str] = Counter()

            async def __aenter__(self) -> Fake:
                return self

            async def __aexit__(self, *exc: Any) -> None:
                return None

            async def send(self, topic: str, value: bytes, key: bytes | None) -> None:
                self.published[topic] += 1

        return Fake()


@pytest.mark.parametrize("command", ["publish", "simulate"])
def test_publish_and_simulate_use_the_worker_security(
    command: str,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {**SASL_ENV, "SUNES_TLS": "1"}.items():
        clean_env.setenv(name, value)
    module = publish_command if command == "publish" else simulate_command
    captured = Captured()
    clean_env.setattr(module, "ensure_topics", captured.ensure_topics)
    clean_env.setattr(module, "Publisher", captured.publisher)
    small = ["--establishments", "1", "--days", "1", "--invalid-fraction", "0"]
    if command == "publish":
        path = tmp_path / "f.ndjson"
        assert main(["simulate", *small, "-o", str(path)]) == 0
        argv = ["publish", str(path)]
    else:
        argv = ["simulate", *small]
    assert main([*argv, "--brokers", "k:9092"]) == 0, capsys.readouterr().err
    worker = WorkerConfig(store="memory://", security=security_from_env())
    assert captured.securities == [worker.security, worker.security]  # topics, then producer
    assert PASSWORD not in capsys.readouterr().err


def test_the_password_is_in_no_log_line(
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every client logs at DEBUG while failing to reach a broker: never the password."""
    from streams.brokers._common import free_port

    for name, value in SASL_ENV.items():
        clean_env.setenv(name, value)
    path = tmp_path / "f.ndjson"
    assert main(["simulate", "--establishments", "1", "--days", "1", "-o", str(path)]) == 0
    caplog.set_level(logging.DEBUG)
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["publish", str(path), "--brokers", address]) == 3
    assert main(["publish", str(path), "--brokers", address, "--no-create-topics"]) == 3
    err = capsys.readouterr().err
    assert address in err
    assert "SUNES_SASL_" in err  # the message says which settings to check
    assert caplog.text  # the clients did log
    assert PASSWORD not in caplog.text
    assert PASSWORD not in err
