"""API key parsing, constant-time identification, per-key rate limits and listener tokens (pure logic)."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import threading
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from serving.auth import (
    ApiKeyConfigError,
    Authenticator,
    InvalidToken,
    Listener,
    TokenConfigError,
    TokenVerifier,
    parse_api_keys,
)


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


# -- listener tokens (JWT) ----------------------------------------------------------------------

SECRET = "a-listener-token-secret-of-32-bytes!"


def _token(claims: dict, key=SECRET, alg: str = "HS256", kid: str | None = None) -> str:
    base = {"sub": "ana", "exp": int(time.time()) + 600}
    return jwt.encode({**base, **claims}, key, algorithm=alg, headers={"kid": kid} if kid else None)


def _verify(verifier: TokenVerifier, token: str) -> Listener:
    return asyncio.run(verifier.verify(token))


def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as raised:
        _verify(verifier, token)
    return raised.value.reason


def test_an_hs256_token_proves_its_sub_with_expiry_issuer_and_audience_checked() -> None:
    verifier = TokenVerifier(secret=SECRET, issuer="https://auth.example", audience="encore")
    good = {"iss": "https://auth.example", "aud": "encore", "jti": "t-1"}
    assert _verify(verifier, _token(good)) == Listener("ana", "t-1")
    assert "expired" in _refused(verifier, _token({**good, "exp": int(time.time()) - 120}))
    assert "issuer" in _refused(verifier, _token({**good, "iss": "https://evil.example"}))
    assert "audience" in _refused(verifier, _token({**good, "aud": "someone-else"}))
    assert "'iss'" in _refused(verifier, _token({"aud": "encore"}))
    assert "signature" in _refused(verifier, _token(good, key="another-secret-of-at-least-32-bytes"))
    no_exp = jwt.encode({**good, "sub": "ana"}, SECRET, algorithm="HS256")
    assert "'exp'" in _refused(verifier, no_exp)
    assert "sub" in _refused(verifier, _token({**good, "sub": "bad\x1bid"}))
    assert "algorithm" in _refused(verifier, jwt.encode({**good, "exp": int(time.time()) + 60}, None,
                                                        algorithm="none"))
    # Within the leeway an expired token still passes; unset issuer/audience are not checked.
    loose = TokenVerifier(secret=SECRET)
    assert _verify(loose, _token({"exp": int(time.time()) - 10})).user_id == "ana"


def test_a_short_secret_and_an_empty_configuration_are_refused() -> None:
    with pytest.raises(TokenConfigError, match="32 bytes"):
        TokenVerifier(secret="short")
    with pytest.raises(TokenConfigError):
        TokenVerifier()


def _jwks(tmp_path: Path) -> tuple[Path, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = []
    for kid, alg, private in (("r1", "RS256", rsa_key), ("e1", "ES256", ec_key)):
        algorithm = jwt.get_algorithm_by_name(alg)
        jwk = json.loads(algorithm.to_jwk(private.public_key()))
        keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path, rsa_key, ec_key


def test_jwks_keys_from_a_file_verify_rs256_and_es256_by_kid(tmp_path: Path) -> None:
    path, rsa_key, ec_key = _jwks(tmp_path)
    verifier = TokenVerifier(jwks=str(path))
    assert _verify(verifier, _token({}, rsa_key, "RS256", "r1")).user_id == "ana"
    assert _verify(verifier, _token({"sub": "bo"}, ec_key, "ES256", "e1")).user_id == "bo"
    assert "kid" in _refused(verifier, _token({}, rsa_key, "RS256", "unknown"))
    assert "does not match" in _refused(verifier, _token({}, ec_key, "ES256", "r1"))
    assert "signature" in _refused(verifier, _token({}, rsa.generate_private_key(65537, 2048), "RS256", "r1"))
    # Algorithm confusion: an HS256 token "signed" with the public key is refused (no secret here).
    assert "algorithm" in _refused(verifier, _token({}, SECRET, "HS256", "r1"))


def test_a_jwks_url_is_fetched_off_the_event_loop(tmp_path: Path) -> None:
    path, rsa_key, _ = _jwks(tmp_path)
    body = path.read_bytes()
    fetched = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        verifier = TokenVerifier(jwks=f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json")
        for _ in range(3):
            assert _verify(verifier, _token({}, rsa_key, "RS256", "r1")).user_id == "ana"
        assert fetched == ["/.well-known/jwks.json"], "cached after the first fetch"
    finally:
        server.shutdown()


def test_a_jwks_without_signing_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "s"}]}))
    with pytest.raises(TokenConfigError, match="asymmetric"):
        TokenVerifier(jwks=str(path))
    with pytest.raises(TokenConfigError, match="cannot be read"):
        TokenVerifier(jwks=str(tmp_path / "missing.json"))
