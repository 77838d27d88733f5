"""Keycloak for tests, in one place: the session's OpenID provider, realms, clients, users and
their tokens. A pytest plugin (tests/conftest.py), like tests/kafka_tools.py.

The provider is real Keycloak (org.keycloak:keycloak-quarkus-dist from Maven Central, unpacked
by `scripts/fetch-keycloak.sh`, run by `make test`), started once per session in dev mode
(`kc.sh start-dev`, an in-memory database) on free ports, from a copy of the distribution of
its own (start-dev rewrites lib/quarkus: two sessions must not share one), logging to a file,
stopped at the end. Tests that use it are marked `keycloak`.

Helpers go through Keycloak's admin REST API: `realm()` makes a realm whose user profile
declares the multivalued `sunes_scopes` attribute, the worker's client (the audience) and a
public client for the password grant with the two mappers a deployment needs (audience, and
user attribute → `sunes_scopes` claim); `user()` adds a user with scopes; `token()` signs in.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streams.brokers._common import free_port

VERSION = os.environ.get("SUNES_KEYCLOAK_VERSION", "26.4.7")
ROOT = Path(__file__).resolve().parents[1]
ADMIN, ADMIN_PASSWORD = "admin", "admin-" + uuid.uuid4().hex[:12]
WORKER_CLIENT = "sunes-worker"  # the audience of the worker's tokens (SUNES_OIDC_AUDIENCE)
CLI_CLIENT = "sunes-cli"  # a public client for the password grant (API tests)
SHORT_CLIENT = "sunes-cli-short"  # the same, with access tokens that expire after 1 s
PASSWORD = "a-password-of-the-tests"
READY_SECONDS = 240  # start-dev takes ~20 s idle, much longer on a loaded machine


def keycloak_home() -> Path:
    """The unpacked distribution (scripts/fetch-keycloak.sh fetches it if needed)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fetch-keycloak.sh")],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SUNES_KEYCLOAK_VERSION": VERSION},
    )
    return Path(done.stdout.strip().splitlines()[-1])


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copy2(source, target)


def private_copy(home: Path, into: Path) -> Path:
    """A home of this session's own: the jars hard-linked (never written), the rest copied."""
    shutil.copytree(home, into, ignore=shutil.ignore_patterns("lib", "data"))
    (into / "lib").mkdir()
    for entry in (home / "lib").iterdir():
        if entry.name == "lib":
            shutil.copytree(entry, into / "lib" / "lib", copy_function=_link_or_copy)
        elif entry.is_dir():
            shutil.copytree(entry, into / "lib" / entry.name)
        else:
            shutil.copy2(entry, into / "lib" / entry.name)
    return into


def _request(
    method: str, url: str, body: Any = None, token: str | None = None, form: bool = False
) -> Any:
    headers = {"Accept": "application/json"}
    data: bytes | None = None
    if form:
        data = urllib.parse.urlencode(body).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise AssertionError(f"Keycloak {method} {url}: {error.code} {detail}") from None
    return json.loads(raw) if raw else None


@dataclass
class Realm:
    """A realm of the session's Keycloak, with the worker's client and the sign-in clients."""

    server: KeycloakServer
    name: str
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        """SUNES_OIDC_ISSUER of a worker that trusts this realm."""
        return f"{self.server.url}/realms/{self.name}"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """The admin REST API under /admin/realms/<realm>."""
        return self.server.admin(method, f"/admin/realms/{self.name}{path}", body)

    def user(self, username: str, scopes: list[str]) -> str:
        """A user whose `sunes_scopes` attribute lists SCOPES; returns the username."""
        self.admin(
            "POST",
            "/users",
            {
                "username": username,
                "enabled": True,
                "emailVerified": True,
                "firstName": username,
                "lastName": "Test",
                "email": f"{username}@example.org",
                "attributes": {"sunes_scopes": scopes},
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            },
        )
        return username

    def token(self, username: str, client: str = CLI_CLIENT) -> str:
        """An access token of the user, by the password grant (API tests only: a browser
        signs in with the authorization code flow)."""
        answer = _request(
            "POST",
            f"{self.issuer}/protocol/openid-connect/token",
            {
                "grant_type": "password",
                "client_id": client,
                "username": username,
                "password": PASSWORD,
                "scope": "openid",
            },
            form=True,
        )
        return str(answer["access_token"])

    def browser_client(
        self, client_id: str, redirect_uris: list[str], token_seconds: int = 300
    ) -> str:
        """A public client people sign in with from a browser (the pages, docs/pages.md): the
        authorization code flow with PKCE S256 only, these exact redirect URIs, the two
        mappers of the worker's tokens, access tokens valid `token_seconds`. Returns its
        client id (SUNES_OIDC_CLIENT_ID)."""
        self.admin(
            "POST",
            "/clients",
            _client(
                client_id, standardFlowEnabled=True, directAccessGrantsEnabled=False,
                redirectUris=redirect_uris,
                attributes={
                    "pkce.code.challenge.method": "S256",
                    "access.token.lifespan": str(token_seconds),
                },
            ),
        )  # fmt: skip
        return client_id

    def key_providers(self) -> list[dict[str, Any]]:
        found = self.admin("GET", "/components?type=org.keycloak.keys.KeyProvider")
        return list(found)

    def rotate_rsa_key(self) -> None:
        """A new generated RSA key of higher priority, the previous ones disabled: what an
        operator does to rotate the realm's signing key."""
        realm_id = self.admin("GET", "")["id"]
        old = [k for k in self.key_providers() if k["providerId"] == "rsa-generated"]
        top = max(int(k["config"].get("priority", ["0"])[0]) for k in old)
        self.admin(
            "POST",
            "/components",
            {
                "name": f"rsa-rotated-{uuid.uuid4().hex[:6]}",
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {
                    "priority": [str(top + 100)],
                    "enabled": ["true"],
                    "active": ["true"],
                    "keySize": ["2048"],
                    "algorithm": ["RS256"],
                },
            },
        )
        for provider in old:
            provider["config"]["enabled"] = ["false"]
            provider["config"]["active"] = ["false"]
            self.admin("PUT", f"/components/{provider['id']}", provider)


def _client(client_id: str, **extra: Any) -> dict[str, Any]:
    """A public client for the password grant whose access tokens carry the worker's
    audience and the user's scopes (the two mappers docs/access.md asks for)."""
    return {
        "clientId": client_id,
        "enabled": True,
        "publicClient": True,
        "directAccessGrantsEnabled": True,
        "standardFlowEnabled": False,
        "protocolMappers": [
            {
                "name": "sunes-audience",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {
                    "included.client.audience": WORKER_CLIENT,
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                },
            },
            {
                "name": "sunes-scopes",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-usermodel-attribute-mapper",
                "config": {
                    "user.attribute": "sunes_scopes",
                    "claim.name": "sunes_scopes",
                    "jsonType.label": "String",
                    "multivalued": "true",
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                    "userinfo.token.claim": "true",
                },
            },
        ],
        **extra,
    }


class KeycloakServer:
    """One Keycloak in dev mode (in-memory database) on free ports."""

    def __init__(self, home: Path, log_path: Path) -> None:
        self.home = home
        self.log_path = log_path
        self.port = free_port()
        self.management_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._admin_token: tuple[str, float] | None = None

    def start(self) -> KeycloakServer:
        env = {
            **os.environ,
            "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # Five test processes share two cores: a bounded heap.
            "JAVA_OPTS_KC_HEAP": "-Xms64m -Xmx512m",
        }
        self.process = subprocess.Popen(
            [str(self.home / "bin" / "kc.sh"), "start-dev", "--db=dev-mem",
             f"--http-port={self.port}", f"--http-management-port={self.management_port}",
             "--http-host=127.0.0.1", "--hostname=http://127.0.0.1:" + str(self.port)],
            stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its own process group: stop() ends kc.sh and its java
        )  # fmt: skip
        deadline = time.monotonic() + READY_SECONDS
        while not self._answers():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"Keycloak exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"Keycloak did not answer within {READY_SECONDS} s:\n{self.log_tail()}"
                )
            time.sleep(1)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/realms/master", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        if self._admin_token is None or time.monotonic() > self._admin_token[1]:
            answer = _request(
                "POST",
                f"{self.url}/realms/master/protocol/openid-connect/token",
                {"grant_type": "password", "client_id": "admin-cli",
                 "username": ADMIN, "password": ADMIN_PASSWORD},
                form=True,
            )  # fmt: skip
            # renewed well before it expires (60 s by default)
            self._admin_token = (answer["access_token"], time.monotonic() + 30)
        return _request(method, self.url + path, body, token=self._admin_token[0])

    def realm(self, name: str | None = None) -> Realm:
        """A new realm with the worker's client, CLI_CLIENT and SHORT_CLIENT, and a user
        profile that declares the multivalued `sunes_scopes` attribute (admins edit it)."""
        realm = Realm(self, name or f"sunes-{uuid.uuid4().hex[:8]}")
        self.admin("POST", "/admin/realms", {"realm": realm.name, "enabled": True})
        profile = realm.admin("GET", "/users/profile")
        profile["attributes"].append(
            {
                "name": "sunes_scopes",
                "displayName": "SUN-ES scopes",
                "multivalued": True,
                "permissions": {"view": ["admin"], "edit": ["admin"]},
            }
        )
        realm.admin("PUT", "/users/profile", profile)
        # The worker's own client: only the audience of the tokens (it signs no one in).
        realm.admin(
            "POST",
            "/clients",
            {"clientId": WORKER_CLIENT, "enabled": True, "publicClient": False,
             "standardFlowEnabled": False, "directAccessGrantsEnabled": False},
        )  # fmt: skip
        realm.admin("POST", "/clients", _client(CLI_CLIENT))
        realm.admin(
            "POST", "/clients", _client(SHORT_CLIENT, attributes={"access.token.lifespan": "1"})
        )
        return realm


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """The session's Keycloak, started on first use and stopped at the session's end; its log
    is keycloak.log in the session's temporary directory."""
    where = tmp_path_factory.mktemp("keycloak")
    home = private_copy(keycloak_home(), where / "home")
    server = KeycloakServer(home, where / "keycloak.log").start()
    try:
        yield server
    finally:
        server.stop()
