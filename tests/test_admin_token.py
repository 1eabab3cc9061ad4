"""Issue 18 #3: distributed mode refuses a weak admin token at start (shorter than 32
characters, or an example value such as secrets/relay.env.example's), saying how to make one;
embedded mode generates its own."""

import asyncio
from pathlib import Path

import pytest

from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.process.cli import run_api
from relay.process.secrets import (
    MIN_ADMIN_TOKEN_CHARS,
    MissingSecret,
    admin_token_weakness,
    check_admin_token,
    resolve_secrets,
)

GOOD = "x" * MIN_ADMIN_TOKEN_CHARS
HOW = r"generate one with: python -c 'import secrets; print\(secrets\.token_urlsafe\(32\)\)'"


def _settings(tmp_path: Path, token: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        encryption_key=KeyRing.generate_spec("k1"),
        admin_token=token,
        temporal_address="127.0.0.1:1",
        clickhouse_url="http://relay:secret@127.0.0.1:1",
    )


@pytest.mark.parametrize("token", ["change-me", "changeme", "REPLACE_WITH_A_GENERATED_TOKEN"])
def test_an_example_value_is_refused(token: str) -> None:
    assert admin_token_weakness(token) == (
        "RELAY_ADMIN_TOKEN is the example value from the documentation"
    )
    with pytest.raises(MissingSecret, match=HOW):
        check_admin_token(token)


def test_a_short_token_is_refused_and_32_characters_pass() -> None:
    assert admin_token_weakness(GOOD[1:]) == (
        "RELAY_ADMIN_TOKEN is 31 characters, fewer than 32: a guessable admin token"
    )
    assert admin_token_weakness(GOOD) is None
    check_admin_token(GOOD)


def test_distributed_mode_refuses_a_weak_token_and_embedded_generates_one(
    tmp_path: Path,
) -> None:
    with pytest.raises(MissingSecret, match="fewer than 32"):
        resolve_secrets(_settings(tmp_path, "short-token"), embedded=False)
    assert resolve_secrets(_settings(tmp_path, GOOD), embedded=False).admin_token == GOOD
    with pytest.raises(MissingSecret, match=rf"needs RELAY_ADMIN_TOKEN to be set.*{HOW}"):
        resolve_secrets(Settings(data_dir=tmp_path, encryption_key="k1:" + "A" * 43), False)
    generated = resolve_secrets(Settings(data_dir=tmp_path), embedded=True)
    assert admin_token_weakness(generated.admin_token) is None


def test_relay_api_refuses_to_start_with_the_example_token(tmp_path: Path) -> None:
    """`relay api`'s start, before it reaches for ClickHouse or Temporal (none here)."""
    loop = asyncio.new_event_loop()  # its own loop: run_api sets the loop's executor
    try:
        with pytest.raises(MissingSecret, match=f"the example value.*{HOW}"):
            loop.run_until_complete(run_api(_settings(tmp_path, "change-me")))
    finally:
        loop.close()
