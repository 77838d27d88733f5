"""`sunes publish` and `sunes simulate` against Apache Kafka over SASL_SSL with SCRAM-SHA-512,
with the worker's settings (SUNES_TLS, SUNES_TLS_CA_FILE, SUNES_SASL_*).

The certificate authority and the broker's certificate (for IP 127.0.0.1) are made here with
openssl; the broker (from the jars) has a SASL_SSL listener beside its PLAINTEXT one and its
PLAINTEXT controller, and the SCRAM user is created when its storage is formatted. The broker
is this module's own: the commands publish to the real input topic names.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.brokers.apache_kafka import ApacheKafkaBroker, SaslSslListener
from streams.kafka_clients import aiokafka_security, security_from_env
from topics.names import INPUT_TOPICS, TOPIC_OF_TYPE
from topics.validation import parse_record

pytestmark = pytest.mark.kafka

USER, PASSWORD = "sunes", "scram-Pa55-for-tests"
SMALL = ["--establishments", "1", "--days", "2", "--seed", "4", "--invalid-fraction", "0"]


def openssl(*argv: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *argv], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"openssl {' '.join(argv)}:\n{done.stderr}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the CA certificate, the broker's key + certificate chain), PEM, for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.fail("this test makes its certificates with openssl: apt-get install openssl")
    where = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=sunes test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=where)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "broker.key", "-out", "broker.csr", cwd=where)  # fmt: skip
    (where / "broker.ext").write_text(
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\n"
        "keyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n"
    )
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "broker.ext", "-out", "broker.pem",
            cwd=where)  # fmt: skip
    keystore = where / "broker-keystore.pem"  # what Kafka's PEM keystore type reads
    keystore.write_text(
        (where / "broker.key").read_text()
        + (where / "broker.pem").read_text()
        + (where / "ca.pem").read_text()
    )
    return where / "ca.pem", keystore


@pytest.fixture(scope="module")
def broker(pki: tuple[Path, Path]) -> Iterator[ApacheKafkaBroker]:
    _, keystore = pki
    listener = SaslSslListener(keystore, {USER: PASSWORD}, mechanism="SCRAM-SHA-512")
    with ApacheKafkaBroker(sasl_ssl=listener) as started:
        yield started


@pytest.fixture
def env(pki: tuple[Path, Path]) -> dict[str, str]:
    """The worker's settings for this broker, and nothing that would point elsewhere."""
    ca, _ = pki
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SUNES_", "KAFKA_")) or k in ("SUNES_CACHE_DIR", "SUNES_KAFKA_VERSION")
    }
    return {
        **base,
        "SUNES_TLS": "1",
        "SUNES_TLS_CA_FILE": str(ca),
        "SUNES_SASL_MECHANISM": "SCRAM-SHA-512",
        "SUNES_SASL_USERNAME": USER,
        "SUNES_SASL_PASSWORD": PASSWORD,
    }


def sunes(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [Path(sys.executable).with_name("sunes"), *argv],
        capture_output=True, text=True, check=False, timeout=180, env=env,
    )  # fmt: skip


async def read_all(bootstrap_servers: str, env: dict[str, str]) -> list[tuple[str, bytes, bytes]]:
    """Every message of the input topics, over SASL_SSL, from the start to the end offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        **aiokafka_security(security_from_env(env)),
    )
    await consumer.start()
    try:
        # Created by the commands with the partitions of topics/names.py.
        partitions = [
            TopicPartition(spec.name, p) for spec in INPUT_TOPICS for p in range(spec.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        messages: list[tuple[str, bytes, bytes]] = []
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                messages += [(tp.topic, r.key or b"", r.value or b"") for r in records]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return messages
    finally:
        await consumer.stop()


def test_publish_and_simulate_reach_a_sasl_ssl_scram_broker(
    broker: ApacheKafkaBroker, env: dict[str, str], tmp_path: Path
) -> None:
    address = broker.sasl_ssl_bootstrap_servers
    assert address != broker.bootstrap_servers
    traffic = tmp_path / "traffic.ndjson"
    made = sunes("simulate", *SMALL, "--output", str(traffic), env=env)
    assert made.returncode == 0, made.stderr
    per_file = Counter(
        TOPIC_OF_TYPE[parse_record(line).type] for line in traffic.read_bytes().splitlines()
    )

    published = sunes("publish", str(traffic), "--brokers", address, env=env)
    assert published.returncode == 0, published.stderr
    assert f"published {per_file.total():,} message(s)" in published.stderr
    simulated = sunes("simulate", *SMALL, "--brokers", address, env=env)  # the same messages
    assert simulated.returncode == 0, simulated.stderr
    assert f"simulated {per_file.total():,} message(s) to {address}" in simulated.stderr

    messages = asyncio.run(read_all(address, env))
    assert Counter(topic for topic, _, _ in messages) == Counter(
        {topic: 2 * n for topic, n in per_file.items()}
    )
    for topic, key, value in messages:
        record = parse_record(value)
        assert (topic, key) == (TOPIC_OF_TYPE[record.type], record.finess.encode())
    for done in (made, published, simulated):
        assert PASSWORD not in done.stdout + done.stderr


def test_a_wrong_password_is_a_kafka_error_that_does_not_show_it(
    broker: ApacheKafkaBroker, env: dict[str, str], tmp_path: Path
) -> None:
    wrong = "not-the-Pa55word"
    traffic = tmp_path / "one.ndjson"
    made = sunes("simulate", *SMALL, "--max-messages", "3", "-o", str(traffic), env=env)
    assert made.returncode == 0, made.stderr
    done = sunes(
        "publish", str(traffic), "--brokers", broker.sasl_ssl_bootstrap_servers,
        env={**env, "SUNES_SASL_PASSWORD": wrong},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    last = done.stderr.splitlines()[-1]  # after aiokafka's own log line
    assert last.startswith(f"error: cannot create topics on {broker.sasl_ssl_bootstrap_servers}")
    assert "SaslAuthenticationFailed" in done.stderr
    assert "Check the SUNES_TLS* / SUNES_SASL_* settings (SASL_SSL)" in last
    assert wrong not in done.stderr


def test_the_plaintext_listener_and_the_log_keep_no_secret(broker: ApacheKafkaBroker) -> None:
    assert broker.workdir is not None
    properties = (broker.workdir / "server.properties").read_text()
    assert "CONTROLLER://127.0.0.1:" in properties
    assert "CONTROLLER:PLAINTEXT" in properties
    assert PASSWORD not in properties
    assert PASSWORD not in (broker.workdir / "broker.log").read_text()


def test_the_broker_certificate_is_checked(
    broker: ApacheKafkaBroker, env: dict[str, str], tmp_path: Path
) -> None:
    """Without SUNES_TLS_CA_FILE the system's authorities do not know the test CA: refused."""
    traffic = tmp_path / "one.ndjson"
    made = sunes("simulate", *SMALL, "--max-messages", "3", "-o", str(traffic), env=env)
    assert made.returncode == 0, made.stderr
    without_ca = {k: v for k, v in env.items() if k != "SUNES_TLS_CA_FILE"}
    done = sunes("publish", str(traffic), "--brokers", broker.sasl_ssl_bootstrap_servers,
                 "--no-create-topics", env=without_ca)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr or "certificate verify failed" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: cannot reach Kafka at ")
