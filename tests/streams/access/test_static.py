"""The static tokens file: hashed tokens with their scopes, re-read when it changes."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from streams.access.scopes import Scope
from streams.access.static import StaticTokens, TokensFileError, hash_token

GHT = "ght-token-0123456789abcdef"
SCRAPER = "scraper-token-0123456789ab"


def entry(name: str, token: str, *scopes: str) -> str:
    listed = ", ".join(f'"{s}"' for s in scopes)
    return f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(token)}"\nscopes = [{listed}]\n'


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    # a distinct mtime even within the filesystem's timestamp granularity
    os.utime(path, ns=(bump * 1_000_000_000, bump * 1_000_000_000))


def test_a_token_is_found_by_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    write(path, entry("ght-sud", GHT, "ej:750000099", "finess:690000001"), 1)
    assert GHT not in path.read_text()
    tokens = StaticTokens(path)
    found = tokens.lookup(GHT)
    assert found is not None and found.subject == "ght-sud" and found.via == "static"
    assert found.scopes == {Scope("ej", "750000099"), Scope("finess", "690000001")}
    assert tokens.lookup(GHT + "x") is None
    assert tokens.lookup(SCRAPER) is None


def test_the_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    write(path, entry("ght-sud", GHT, "ej:750000099"), 1)
    tokens = StaticTokens(path)
    write(path, entry("scraper", SCRAPER, "national"), 2)
    assert tokens.lookup(GHT) is None  # revoked without a restart
    scraper = tokens.lookup(SCRAPER)
    assert scraper is not None and scraper.scopes == {Scope("national", None)}


def test_a_broken_edit_keeps_the_last_good_tokens_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.toml"
    write(path, entry("ght-sud", GHT, "ej:750000099"), 1)
    tokens = StaticTokens(path)
    write(path, entry("ght-sud", GHT, "ej:7500"), 2)
    with caplog.at_level(logging.ERROR):
        assert tokens.lookup(GHT) is not None
        assert tokens.lookup(GHT) is not None
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per version of the file, not per request
    assert "ej:7500" in errors[0] and "keeping the 1 token(s)" in errors[0]
    write(path, entry("ght-sud", GHT, "ej:750000098"), 3)
    fixed = tokens.lookup(GHT)
    assert fixed is not None and fixed.scopes == {Scope("ej", "750000098")}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[token]\n", "is not TOML"),
        ('tokens = "x"\n', "unknown key(s) tokens"),
        ('[[token]]\nsha256 = "00"\nscopes = ["national"]\n', "give it a name"),
        ('[[token]]\nname = "a"\nsha256 = "00"\nscopes = ["national"]\n', "hex sha256"),
        (entry("a", GHT), "give scopes"),
        (entry("a", GHT, "everything"), "not a scope: 'everything'"),
        (entry("a", GHT, "national") + entry("a", SCRAPER, "national"), "given twice"),
        (
            entry("a", GHT, "national").replace("scopes", "token = 1\nscopes"),
            "unknown key(s) token",
        ),
    ],
)
def test_a_bad_file_is_refused_at_start_naming_the_problem(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(text)
    with pytest.raises(TokensFileError, match="SUNES_ACCESS_TOKENS_FILE") as caught:
        StaticTokens(path)
    assert says in str(caught.value) and str(path) in str(caught.value)


def test_a_missing_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(TokensFileError, match="cannot read"):
        StaticTokens(tmp_path / "nowhere.toml")


def test_the_legacy_token_is_a_national_static_token() -> None:
    tokens = StaticTokens(None, legacy_token=GHT)
    found = tokens.lookup(GHT)
    assert found is not None and found.scopes == {Scope("national", None)}
    assert tokens.lookup(GHT[:-1]) is None


def test_a_deleted_file_keeps_the_tokens_and_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.toml"
    write(path, entry("ght-sud", GHT, "ej:750000099"), 1)
    tokens = StaticTokens(path)
    path.unlink()
    with caplog.at_level(logging.ERROR):
        assert tokens.lookup(GHT) is not None
        assert tokens.lookup(GHT) is not None
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "cannot read" in errors[0]
