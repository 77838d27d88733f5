"""`sunes hl7 listen`'s settings: MLLP over TLS (one-way and mutual) with certificates made by
openssl, errors that name the flag or the variable, and Kafka out of reach (exit status 3).
The listener itself: tests/streams/hl7/."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from streams.cli import main
from streams.cli.errors import ConfigError, Exit
from streams.cli.hl7_listen import server_tls
from streams.hl7.listener import Hl7Listener
from streams.hl7.mllp import END, frame
from streams.hl7.testing import read_ack
from tests.streams.hl7.test_listener import RecordingPublisher, StandInConverter, message


def openssl(where: Path, *argv: str) -> None:
    done = subprocess.run(
        ["openssl", *argv], cwd=where, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"openssl {' '.join(argv)}:\n{done.stderr}"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """server.pem/.key for 127.0.0.1 and client.pem/.key, each self-signed, in one folder."""
    if shutil.which("openssl") is None:
        pytest.fail("this test makes its certificates with openssl: apt-get install openssl")
    where = tmp_path_factory.mktemp("pki")
    for name, subject, extension in (
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("client", "/CN=an integration engine", "extendedKeyUsage=clientAuth"),
    ):
        openssl(where, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", subject, "-addext", extension,
                "-keyout", f"{name}.key", "-out", f"{name}.pem")  # fmt: skip
    return where


async def over_tls(server: ssl.SSLContext, client: ssl.SSLContext, raw: bytes) -> bytes | None:
    """One message to a listener serving `server`, from a client using `client`: the ACK,
    or None when the connection failed; the listener stays up either way."""
    publisher = RecordingPublisher()
    listener = Hl7Listener(StandInConverter(), publisher)
    _, port = await listener.start("127.0.0.1", 0, server)
    try:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
            writer.write(frame(raw))
            await writer.drain()
            answer: bytes | None = await asyncio.wait_for(reader.readuntil(END), 10)
            writer.close()
        except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
            answer = None
        assert listener.serving
    finally:
        await listener.stop()
    return answer


def client_context(certificates: Path, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certificates / "server.pem")
    if with_certificate:
        context.load_cert_chain(certificates / "client.pem", certificates / "client.key")
    return context


async def test_mllp_over_tls_gets_its_ack(certificates: Path) -> None:
    server = server_tls(certificates / "server.pem", certificates / "server.key", None)
    assert server is not None
    answer = await over_tls(server, client_context(certificates, False), message("t1"))
    assert answer is not None
    ack = read_ack(answer[1 : -len(END)])
    assert (ack.code, ack.control_id) == ("AA", "t1")


async def test_mutual_tls_refuses_a_client_without_a_certificate(certificates: Path) -> None:
    server = server_tls(
        certificates / "server.pem", certificates / "server.key", certificates / "client.pem"
    )
    assert server is not None
    assert await over_tls(server, client_context(certificates, False), message("t2")) is None
    answer = await over_tls(server, client_context(certificates, True), message("t3"))
    assert answer is not None and read_ack(answer[1 : -len(END)]).code == "AA"


def test_without_tls_flags_the_listener_speaks_plain_tcp() -> None:
    assert server_tls(None, None, None) is None


def test_tls_settings_errors_name_the_flag(certificates: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="need --tls-cert"):
        server_tls(None, certificates / "server.key", None)
    with pytest.raises(ConfigError, match=r"--tls-key .*not a file"):
        server_tls(certificates / "server.pem", tmp_path / "missing.key", None)
    with pytest.raises(ConfigError, match="cannot load them"):
        server_tls(certificates / "server.pem", certificates / "client.key", None)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--port", "http"], "SUNES_HL7_PORT / --port must be a whole number"),
        (["--max-in-flight", "0"], "--max-in-flight must be at least 1"),
        (["--max-message-bytes", "-5"], "--max-message-bytes must be at least 1"),
        (["--tls-key", "k.pem"], "--tls-key / --tls-client-ca need --tls-cert"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_status_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["hl7", "listen", "--state-dir", str(tmp_path), *argv])
    assert code == Exit.USAGE
    assert says in capsys.readouterr().err


def test_kafka_out_of_reach_is_exit_status_3(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["hl7", "listen", "--brokers", "127.0.0.1:1", "--no-create-topics", "--port", "0",
                 "--metrics-port", "0", "--state-dir", str(tmp_path)])  # fmt: skip
    assert code == Exit.KAFKA
    assert "cannot reach Kafka at 127.0.0.1:1" in capsys.readouterr().err
