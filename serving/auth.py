"""API keys with scopes, checked in constant time, and a rate limit per key.

Keys are configured as JSON, a list of `{"name", "key", "scopes", "rate_per_s", "burst"}`:
`key` is the secret itself or, better, `"sha256:<hex digest of the secret>"` so the configuration
holds no secret. Scopes:

| scope | allows |
|---|---|
| `write` | `POST /v1/events` |
| `read` | recommendation, rank and profile reads |
| `admin` | catalog writes (`POST /v1/tracks`) and the operator data (`/v1/ops/*`, `/metrics`) |

A request presents its key as `Authorization: Bearer <key>` or `X-API-Key: <key>`. With no keys
configured the API runs in **demo mode**: every request is allowed, and the service says so loudly.

>>> keys = parse_api_keys('[{"name": "player", "key": "s3cret-player-key", "scopes": ["write"]}]')
>>> auth = Authenticator(keys)
>>> auth.identify("s3cret-player-key").name, auth.identify("wrong")
('player', None)
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import orjson
from fastapi import Request

from serving.errors import ApiError

SCOPES = ("write", "read", "admin")
DEFAULT_RATE_PER_S = 200.0
DEFAULT_BURST = 400.0


class ApiKeyConfigError(ValueError):
    """The API key configuration cannot be used; the message says what is wrong (never a secret)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes
    """SHA-256 of the secret: the secret itself is not kept."""
    scopes: frozenset[str]
    rate_per_s: float = DEFAULT_RATE_PER_S
    burst: float = DEFAULT_BURST


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def parse_api_keys(text: str) -> list[ApiKey]:
    try:
        entries = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ApiKeyConfigError(f"API keys must be a JSON list: {exc}") from None
    if not isinstance(entries, list):
        raise ApiKeyConfigError("API keys must be a JSON list of objects")
    keys: list[ApiKey] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ApiKeyConfigError(f"API key #{index} must be an object")
        name = entry.get("name")
        secret = entry.get("key")
        scopes = entry.get("scopes")
        if not isinstance(name, str) or not name:
            raise ApiKeyConfigError(f"API key #{index} needs a name")
        if not isinstance(secret, str):
            raise ApiKeyConfigError(f"API key {name!r} needs a key")
        if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
            raise ApiKeyConfigError(f"API key {name!r} needs scopes from {', '.join(SCOPES)}")
        if secret.startswith("sha256:"):
            try:
                digest = bytes.fromhex(secret.removeprefix("sha256:"))
            except ValueError:
                raise ApiKeyConfigError(f"API key {name!r}: sha256: must be followed by hex") from None
            if len(digest) != 32:
                raise ApiKeyConfigError(f"API key {name!r}: a sha256 digest has 64 hex digits")
        elif len(secret) < 16:
            raise ApiKeyConfigError(f"API key {name!r} needs a key of at least 16 characters")
        else:
            digest = _digest(secret)
        rate = float(entry.get("rate_per_s", DEFAULT_RATE_PER_S))
        burst = float(entry.get("burst", max(DEFAULT_BURST, rate)))
        if rate <= 0 or burst < 1:
            raise ApiKeyConfigError(f"API key {name!r}: rate_per_s must be > 0 and burst >= 1")
        keys.append(ApiKey(name, digest, frozenset(scopes), rate, burst))
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ApiKeyConfigError("API key names must be unique")
    return keys


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=lambda: time.monotonic())


class Authenticator:
    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self.keys = list(keys)
        self._buckets = {key.name: _Bucket(key.burst) for key in self.keys}
        self._lock = threading.Lock()

    @property
    def demo_mode(self) -> bool:
        return not self.keys

    def identify(self, presented: str) -> ApiKey | None:
        """The key whose secret was presented, comparing with every key in constant time."""
        digest = _digest(presented)
        found = None
        for key in self.keys:  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def take_token(self, key: ApiKey) -> float:
        """Spend one request from the key's bucket; returns 0, or the seconds to wait if empty."""
        with self._lock:
            bucket = self._buckets[key.name]
            now = time.monotonic()
            bucket.tokens = min(key.burst, bucket.tokens + (now - bucket.updated) * key.rate_per_s)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / key.rate_per_s


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def require(scope: str) -> Callable[[Request], Awaitable[ApiKey | None]]:
    """A FastAPI dependency: the request's key must exist, hold `scope`, and be within its rate."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    # async: runs on the event loop (a plain def would go through the thread pool on every request).
    async def check(request: Request) -> ApiKey | None:
        auth: Authenticator = request.app.state.auth
        if auth.demo_mode:
            return None
        secret = presented_key(request)
        if secret is None:
            raise ApiError(401, "unauthenticated",
                           "an API key is required: send 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        key = auth.identify(secret)
        if key is None:
            raise ApiError(401, "unauthenticated", "the API key is not valid",
                           headers={"WWW-Authenticate": "Bearer"})
        if scope not in key.scopes:
            raise ApiError(403, "forbidden", f"the key {key.name!r} lacks the {scope!r} scope")
        wait_s = auth.take_token(key)
        if wait_s > 0:
            raise ApiError(429, "rate_limited",
                           f"the key {key.name!r} is over its limit of {key.rate_per_s:g} requests/s",
                           headers={"Retry-After": str(max(1, round(wait_s)))})
        return key

    return check
