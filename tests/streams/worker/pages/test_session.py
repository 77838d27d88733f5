"""The pages' cookies: sealed with the shared secret, unreadable and unforgeable without it,
one cookie never standing for the other, too old ones refused, the size checked."""

from __future__ import annotations

import time

import pytest

from streams.worker.pages.session import CookieTooLarge, LoginState, Sealer, Session

SECRET = "a-session-secret-of-the-tests-0123456789"
SESSION = Session("header.payload-with-the-claims.signature", "refresh.token.value", 1e9)
LOGIN = LoginState(
    "state-1", "nonce-1", "verifier-" + "v" * 50, "/ui/750000001/DS1.1/F2", "http://x/ui/callback"
)


def test_a_session_read_back_by_any_worker_with_the_secret() -> None:
    sealed = Sealer(SECRET).seal_session(SESSION)
    assert Sealer(SECRET).open_session(sealed) == SESSION  # another worker, same secret
    assert "refresh" not in sealed and "payload" not in sealed  # encrypted, not just signed
    assert Sealer(SECRET + "-other").open_session(sealed) is None


def test_forged_absent_or_swapped_cookies_are_no_session() -> None:
    sealer = Sealer(SECRET)
    sealed = sealer.seal_session(SESSION)
    tampered = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    assert sealer.open_session(tampered) is None
    assert sealer.open_session(None) is None and sealer.open_session("") is None
    # a login cookie is never a session, nor the reverse (a key per cookie)
    assert sealer.open_session(sealer.seal_login(LOGIN)) is None
    assert sealer.open_login(sealed) is None
    assert sealer.open_login(sealer.seal_login(LOGIN)) == LOGIN


def test_an_old_login_cookie_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    sealer = Sealer(SECRET)
    sealed = sealer.seal_login(LOGIN)
    later = time.time() + 601  # LOGIN_SECONDS later
    monkeypatch.setattr(time, "time", lambda: later)
    assert sealer.open_login(sealed) is None


def test_tokens_too_large_for_a_cookie_are_said() -> None:
    import os

    huge = Session(os.urandom(3000).hex(), None, 0.0)  # incompressible
    with pytest.raises(CookieTooLarge, match="more than a cookie holds"):
        Sealer(SECRET).seal_session(huge)
