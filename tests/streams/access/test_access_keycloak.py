"""Scoped access end to end: a `sunes worker` on real Kafka that trusts a real Keycloak realm.

Users scoped to one FINESS, to a legal entity, to a region and nationally each see exactly
their establishments' worklists and figures (/indicators, /metrics with
SUNES_FIGURES_ACCESS=token) and get a 403 naming the scope needed elsewhere; an expired, a
foreign-signed or a missing token gets a 401; a key rotation at Keycloak is followed without
restarting the worker; the static tokens file is re-read while the worker runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from streams.access.static import hash_token
from streams.testing import WorkerProcess, rows_of
from tests.kafka_tools import publish_on
from tests.keycloak_tools import SHORT_CLIENT, WORKER_CLIENT, KeycloakServer, Realm
from tests.streams.worker.test_worker_kafka import dataset, reference
from topics.names import ESTABLISHMENTS, TopicNames
from topics.records import EstablishmentRecord
from topics.validation import parse_record

pytestmark = [pytest.mark.kafka, pytest.mark.keycloak]

SCRAPER = "scraper-token-" + "0123456789abcdef"  # a static national token (Prometheus)
GHT = "ght-token-" + "0123456789abcdef"  # a static token of a GHT's integration
LEEWAY = 2  # the worker's SUNES_OIDC_LEEWAY_SECONDS here


def tokens_file(path: Path, ght_scope: str, bump: int) -> Path:
    path.write_text(
        f'[[token]]\nname = "prometheus"\nsha256 = "{hash_token(SCRAPER)}"\nscopes = ["national"]\n'
        f'[[token]]\nname = "ght-integration"\nsha256 = "{hash_token(GHT)}"\nscopes = ["{ght_scope}"]\n'
    )  # fmt: skip
    stamp = (int(time.time()) + bump) * 1_000_000_000  # a new mtime whatever the clock's grain
    os.utime(path, ns=(stamp, stamp))
    return path


def registry_of(messages: list[tuple[str, bytes | None, bytes]]) -> dict[str, EstablishmentRecord]:
    records = [parse_record(v) for t, _, v in messages if t == ESTABLISHMENTS]
    return {r.finess: r for r in records if isinstance(r, EstablishmentRecord)}


def get(worker: WorkerProcess, path: str, token: str | None) -> tuple[int, Any]:
    status, body = worker.fetch(path, token)
    return status, (body.decode() if path == "/metrics" else orjson.loads(body))


def seen(worker: WorkerProcess, token: str | None) -> tuple[set[str], set[str]]:
    """The establishments of /indicators and of /metrics' series, to this token."""
    status, rows = get(worker, "/indicators", token)
    assert status == 200, rows
    status, metrics = get(worker, "/metrics", token)
    assert status == 200, metrics
    in_metrics = {
        line.split('finess="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if 'finess="' in line and not line.startswith("#")
    }
    return {r["finess"] for r in rows}, in_metrics


def units_path(row: dict[str, Any]) -> str:
    return f"/indicators/{row['finess']}/{row['indicator']}/{row['period']}/units"


def foreign_signed(genuine: str) -> str:
    """The genuine token's header and claims, signed by a key of our own (same kid)."""
    header = jwt.get_unverified_header(genuine)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header["kid"]})


def test_each_scope_sees_exactly_its_establishments(
    keycloak: KeycloakServer,
    workers: Callable[..., WorkerProcess],
    kafka_bootstrap_servers: str,
    kafka_topics: TopicNames,
    unique_kafka_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    messages, finess = dataset(seed=41, establishments=7, days=12)
    expected = reference(messages, finess)
    registry = registry_of(messages)
    # The simulator puts three establishments per legal entity, each entity in a region.
    ordered = sorted(registry.values(), key=lambda r: (r.region, r.finess_ej, r.finess))
    members = {r.finess_ej: [m for m in ordered if m.finess_ej == r.finess_ej] for r in ordered}
    legal_entity = max(members, key=lambda ej: (len(members[ej]), ej))
    one = members[legal_entity][0]
    other_region = next(r.region for r in ordered if r.region != one.region)
    scoped = {
        "clinic": ([f"finess:{one.finess}"], {one.finess}),
        "dim": ([f"ej:{legal_entity}"], {r.finess for r in ordered if r.finess_ej == legal_entity}),
        "ars": (
            [f"region:{other_region}"],
            {r.finess for r in ordered if r.region == other_region},
        ),
        "national": (["national"], set(registry)),
    }
    assert len({frozenset(sees) for _, sees in scoped.values()}) == 4  # four different views
    assert 1 < len(scoped["dim"][1]) < len(registry) and scoped["ars"][1].isdisjoint(
        scoped["dim"][1]
    )

    realm: Realm = keycloak.realm()
    for username, (scopes, _) in scoped.items():
        realm.user(username, scopes)
    static = tokens_file(tmp_path / "tokens.toml", f"ej:{legal_entity}", bump=0)
    worker = workers(
        unique_kafka_name("access"), None,
        "--oidc-issuer", realm.issuer, "--oidc-audience", WORKER_CLIENT,
        "--oidc-leeway-seconds", str(LEEWAY), "--access-tokens-file", str(static),
        "--figures-access", "token",
    )  # fmt: skip
    publish_on(kafka_bootstrap_servers, kafka_topics, messages)

    def complete() -> bool:
        status, rows = get(worker, "/indicators", SCRAPER)
        return status == 200 and rows_of(rows, finess) == expected

    worker.wait_until(complete, 120, "/indicators (to the national scraper) to equal the reference")
    one_row_each = {row["finess"]: row for row in expected}  # a figure of each establishment
    assert set(one_row_each) == set(registry)

    # Each user: exactly its establishments' lists and figures, a 403 naming the scope elsewhere.
    for username, (_, sees) in scoped.items():
        token = realm.token(username)
        assert seen(worker, token) == (sees, sees), username
        for f, row in one_row_each.items():
            status, body = get(worker, units_path(row), token)
            if f in sees:
                assert status == 200 and body["total"] == row["denominator"], (username, f)
            else:
                record = registry[f]
                assert status == 403, (username, f)
                assert body["error"].startswith(
                    f"FINESS {f} needs one of finess:{f}, ej:{record.finess_ej}, "
                    f"region:{record.region}, national; {username} has "
                ), body
                status, _ = get(worker, f"/indicators?finess={f}", token)
                assert status == 403
    # The static GHT token: its legal entity, like the DIM.
    assert seen(worker, GHT) == (scoped["dim"][1], scoped["dim"][1])

    # 401: no token, an expired one, one signed by a key that is not the provider's.
    clinic_row = units_path(one_row_each[one.finess])
    genuine = realm.token("clinic")
    short = realm.token("clinic", SHORT_CLIENT)
    for path in (clinic_row, "/indicators", "/metrics"):
        assert worker.fetch(path)[0] == 401
        assert worker.fetch(path, foreign_signed(genuine))[0] == 401
    expires = jwt.decode(short, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires + LEEWAY + 1 - time.time()))  # past its exp and the leeway
    status, body = get(worker, clinic_row, short)
    assert status == 401 and "expired" in body["error"]

    # A key rotation at Keycloak: the worker follows it, without a restart.
    old_kid = jwt.get_unverified_header(genuine)["kid"]
    realm.rotate_rsa_key()
    rotated = realm.token("clinic")
    assert jwt.get_unverified_header(rotated)["kid"] != old_kid
    # (a JWKS fetched less than REFETCH_INTERVAL ago is not fetched again at once)
    worker.wait_until(
        lambda: worker.fetch(clinic_row, rotated)[0] == 200, 30, "the rotated key to be accepted"
    )
    assert worker.fetch(units_path(one_row_each[ordered[-1].finess]), rotated)[0] == 403

    # The static tokens file edited while the worker runs: the GHT token moves to the region.
    tokens_file(static, f"region:{other_region}", bump=5)
    assert seen(worker, GHT) == (scoped["ars"][1], scoped["ars"][1])

    # Every access in the access log, with subject and scope; no token in it.
    log = worker.log_path.read_text(errors="replace")
    for line in (
        "served to clinic (oidc)",
        f"scope finess:{one.finess}",
        "served to dim (oidc)",
        f"scope ej:{legal_entity}",
        f"scope region:{other_region}",
        "served to prometheus (static)",
        "served to ght-integration (static)",
        "refused (403)",
        "refused (401)",
    ):
        assert line in log, line
    for secret in (SCRAPER, GHT, genuine, rotated, short):
        assert secret not in log
