"""API key parsing, constant-time identification and per-key rate limits (pure logic)."""

from __future__ import annotations

import hashlib

import pytest

from serving.auth import ApiKeyConfigError, Authenticator, parse_api_keys


def _keys(*entries: str) -> str:
    return "[" + ",".join(entries) + "]"


def test_keys_parse_with_scopes_limits_and_hashed_secrets() -> None:
    digest = hashlib.sha256(b"hashed-secret-value").hexdigest()
    keys = parse_api_keys(_keys(
        '{"name": "player", "key": "player-secret-0001", "scopes": ["write"], "rate_per_s": 5}',
        f'{{"name": "ops", "key": "sha256:{digest}", "scopes": ["admin", "read"]}}',
    ))
    auth = Authenticator(keys)
    player = auth.identify("player-secret-0001")
    assert player is not None and player.scopes == {"write"} and player.rate_per_s == 5
    ops = auth.identify("hashed-secret-value")
    assert ops is not None and ops.name == "ops" and ops.scopes == {"admin", "read"}
    assert auth.identify("sha256:" + digest) is None, "the digest itself is not a key"
    assert auth.identify("player-secret-0002") is None
    assert not auth.demo_mode and Authenticator([]).demo_mode


@pytest.mark.parametrize(("text", "complaint"), [
    ("not json", "JSON list"),
    ('{"name": "x"}', "JSON list"),
    (_keys('{"key": "0123456789abcdef", "scopes": ["read"]}'), "needs a name"),
    (_keys('{"name": "x", "key": "short", "scopes": ["read"]}'), "at least 16"),
    (_keys('{"name": "x", "key": "0123456789abcdef", "scopes": ["root"]}'), "scopes"),
    (_keys('{"name": "x", "key": "0123456789abcdef", "scopes": []}'), "scopes"),
    (_keys('{"name": "x", "key": "sha256:zz", "scopes": ["read"]}'), "hex"),
    (_keys('{"name": "x", "key": "sha256:abcd", "scopes": ["read"]}'), "64 hex"),
    (_keys('{"name": "x", "key": "0123456789abcdef", "scopes": ["read"], "rate_per_s": 0}'), "rate_per_s"),
    (_keys('{"name": "x", "key": "0123456789abcdef", "scopes": ["read"]}',
           '{"name": "x", "key": "fedcba9876543210", "scopes": ["read"]}'), "unique"),
])
def test_bad_key_configurations_are_refused_without_echoing_secrets(text: str, complaint: str) -> None:
    with pytest.raises(ApiKeyConfigError, match=complaint) as raised:
        parse_api_keys(text)
    assert "0123456789abcdef" not in str(raised.value)


def test_rate_limit_spends_a_burst_then_refills_at_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("serving.auth.time.monotonic", lambda: clock[0])
    auth = Authenticator(parse_api_keys(_keys(
        '{"name": "k", "key": "0123456789abcdef", "scopes": ["read"], "rate_per_s": 2, "burst": 3}')))
    key = auth.keys[0]
    assert [auth.take_token(key) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = auth.take_token(key)
    assert wait == pytest.approx(0.5)
    clock[0] += 0.5
    assert auth.take_token(key) == 0.0
    assert auth.take_token(key) > 0
