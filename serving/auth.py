"""Who may call: service API keys with scopes, and per-listener JWT tokens; a rate limit for each.

**Service keys** (backends) are configured as JSON, a list of `{"name", "key", "scopes",
"rate_per_s", "burst"}`:
`key` is the secret itself or, better, `"sha256:<hex digest of the secret>"` so the configuration
holds no secret. Scopes:

| scope | allows |
|---|---|
| `write` | `POST /v1/events`, seeds |
| `read` | recommendation, rank, similar-track and profile reads |
| `admin` | catalog writes (`POST /v1/tracks`), forgetting and exporting a listener, operator data |

A request presents its key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.

**Listener tokens** (player apps) are JWTs in `Authorization: Bearer <token>` (`TokenVerifier`):
HS256 with `ENCORE_JWT_SECRET`, or RS/PS/ES/EdDSA keys from a JWKS file or URL (`ENCORE_JWT_JWKS`),
never an algorithm the key was not made for; `exp` and `sub` are required, `iss` and `aud` checked
when configured. The token's `sub` is the listener: it may post only its own events and read only
its own recommendations, rank, profile and export, and forget itself (`require(..., listener=...)`).
Each listener has its own rate bucket. Buckets are per worker process (`serving/limits.py`).

With no keys and no token verifier configured the API runs in **demo mode**: every request is
allowed, and the service says so loudly.

>>> keys = parse_api_keys('[{"name": "player", "key": "s3cret-player-key", "scopes": ["write"]}]')
>>> auth = Authenticator(keys)
>>> auth.identify("s3cret-player-key").name, auth.identify("wrong")
('player', None)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import jwt
import orjson
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from schemas._text import is_identifier
from serving.errors import ApiError
from serving.limits import rate_limited

SCOPES = ("write", "read", "admin")
DEFAULT_RATE_PER_S = 200.0
DEFAULT_BURST = 400.0
LISTENER_RATE_PER_S = 20.0
"""Requests per second of one listener's tokens, per API worker process (burst: twice as many)."""
LISTENER_BUCKETS = 100_000
"""Listeners whose rate buckets a replica keeps (least recently seen go first)."""
TOKEN_LEEWAY_S = 30
"""Clock skew allowed on `exp` (and `nbf`, `iat`)."""
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                         "EdDSA")
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class ApiKeyConfigError(ValueError):
    """The API key configuration cannot be used; the message says what is wrong (never a secret)."""


class TokenConfigError(ValueError):
    """The token configuration cannot be used (never echoes a secret)."""


class InvalidToken(Exception):
    """A presented token that does not prove a listener; `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


@dataclass(frozen=True)
class Listener:
    """A caller proven by a listener token: it acts for `user_id` (the token's `sub`) only."""

    user_id: str
    token_id: str | None = None
    """The token's `jti`, if any (for logs and revocation lists; never the token itself)."""


Principal = ApiKey | Listener | None
"""Who a request is: a service key, a listener, or None in demo mode."""


class TokenVerifier:
    """Verifies listener JWTs: HS256 with a shared secret and/or asymmetric keys from a JWKS.

    The key decides the algorithm: an HS256 token needs the secret, any other algorithm a JWKS key
    of that `kid` and type, so a public key can never be used as an HMAC secret. A JWKS URL is
    fetched with PyJWT's `PyJWKClient` (cached 5 minutes, refetched for an unknown `kid` at most
    every 30 s) in a worker thread, never on the event loop.
    """

    def __init__(self, secret: str | None = None, jwks: str | None = None, issuer: str | None = None,
                 audience: str | None = None, leeway_s: float = TOKEN_LEEWAY_S) -> None:
        if not secret and not jwks:
            raise TokenConfigError("a token verifier needs ENCORE_JWT_SECRET or ENCORE_JWT_JWKS")
        if secret is not None and len(secret.encode()) < 32:
            raise TokenConfigError("ENCORE_JWT_SECRET must be at least 32 bytes (HS256 with a short "
                                   "secret can be brute-forced)")
        self._secret = secret or None
        self.issuer = issuer or None
        self.audience = audience or None
        self.leeway_s = leeway_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._client: jwt.PyJWKClient | None = None
        if jwks:
            if jwks.startswith(("https://", "http://")):
                self._client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300, timeout=5)
            else:
                self._keys = _read_jwks(jwks)

    @property
    def algorithms(self) -> list[str]:
        return (["HS256"] if self._secret else []) + (
            list(ASYMMETRIC_ALGORITHMS) if self._keys or self._client else [])

    async def verify(self, token: str) -> Listener:
        """The listener a token proves, or `InvalidToken`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is not a JWT") from None
        alg = header.get("alg")
        if alg == "HS256" and self._secret:
            key: Any = self._secret
        elif alg in ASYMMETRIC_ALGORITHMS and (self._keys or self._client):
            key = await self._public_key(token, header)
        else:
            raise InvalidToken(f"the token's algorithm {alg!r} is not accepted here")
        options: Any = {"require": ["exp", "sub"]}
        try:
            claims = jwt.decode(token, key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway_s, options=options)
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is not for this audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token's issuer is not trusted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {type(exc).__name__}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not is_identifier(sub):
            raise InvalidToken("the token's sub is not a user id (1-128 characters, no control characters)")
        jti = claims.get("jti")
        return Listener(sub, jti if isinstance(jti, str) else None)

    async def _public_key(self, token: str, header: dict[str, Any]) -> Any:
        kid = header.get("kid")
        found = self._keys.get(kid) if isinstance(kid, str) else None
        if found is None and len(self._keys) == 1 and kid is None:
            found = next(iter(self._keys.values()))
        if found is None and self._client is not None:
            client = self._client
            try:
                found = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientConnectionError:
                raise ApiError(503, "jwks_unavailable", "the token keys (JWKS) cannot be fetched") from None
            except jwt.PyJWTError:
                found = None
        if found is None:
            raise InvalidToken("no key of the JWKS matches the token's kid")
        if found.algorithm_name != header.get("alg"):
            raise InvalidToken("the token's algorithm does not match its key")
        return found.key


def _read_jwks(path: str) -> dict[str, jwt.PyJWK]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise TokenConfigError(f"ENCORE_JWT_JWKS cannot be read: {exc.strerror}") from None
    try:
        keys = jwt.PyJWKSet.from_json(text).keys
    except (jwt.PyJWTError, ValueError) as exc:
        raise TokenConfigError(f"ENCORE_JWT_JWKS is not a usable JWK set: {exc}") from None
    usable = {}
    for index, key in enumerate(keys):
        if key.algorithm_name not in ASYMMETRIC_ALGORITHMS:
            raise TokenConfigError(f"ENCORE_JWT_JWKS key #{index} is not an asymmetric signing key")
        usable[key.key_id or f"#{index}"] = key
    return usable


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=lambda: time.monotonic())


class Authenticator:
    def __init__(self, keys: Iterable[ApiKey], tokens: TokenVerifier | None = None,
                 listener_rate_per_s: float = LISTENER_RATE_PER_S) -> None:
        self.keys = list(keys)
        self.tokens = tokens
        self.listener_rate_per_s = listener_rate_per_s
        self._buckets = {key.name: _Bucket(key.burst) for key in self.keys}
        self._listeners: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def demo_mode(self) -> bool:
        return not self.keys and self.tokens is None

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
            return _spend(self._buckets[key.name], key.rate_per_s, key.burst)

    def take_listener_token(self, listener: Listener) -> float:
        """The same for a listener's own bucket (kept for the `LISTENER_BUCKETS` most recent)."""
        rate = self.listener_rate_per_s
        with self._lock:
            bucket = self._listeners.get(listener.user_id)
            if bucket is None:
                bucket = self._listeners[listener.user_id] = _Bucket(2 * rate)
                if len(self._listeners) > LISTENER_BUCKETS:
                    self._listeners.popitem(last=False)
            else:
                self._listeners.move_to_end(listener.user_id)
            return _spend(bucket, rate, 2 * rate)


def _spend(bucket: _Bucket, rate: float, burst: float) -> float:
    now = time.monotonic()
    bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
    bucket.updated = now
    if bucket.tokens >= 1:
        bucket.tokens -= 1
        return 0.0
    return (1 - bucket.tokens) / rate


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


class ListenerAccess(Enum):
    """What a listener token may do on a route."""

    NEVER = "never"
    """Service keys only (catalog writes, operator routes)."""
    OWN = "own"
    """Only for the listener in the path (`/v1/users/{user_id}/...` with `user_id` = the token's sub)."""
    ANY = "any"
    """Allowed; the handler checks what the listener touches (`POST /v1/events`: every event's
    `user_id`), or the route holds no one's data (similar tracks)."""


SERVICE_KEY = APIKeyHeader(name="X-API-Key", scheme_name="ServiceKey", auto_error=False,
                           description="A service API key (`ENCORE_API_KEYS`), with the scopes the "
                           "route needs; `Authorization: Bearer <key>` works too.")
LISTENER_TOKEN = HTTPBearer(scheme_name="ListenerToken", bearerFormat="JWT", auto_error=False,
                            description="A listener's JWT (`sub` = the user id): only that listener's "
                            "events and data.")


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def require(scope: str, listener: ListenerAccess = ListenerAccess.NEVER
            ) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: a service key with `scope`, or (where `listener` allows) a listener
    token, within its rate. The principal is also left on `request.state.principal`
    (`current_principal`). The security-scheme dependencies put the schemes in the OpenAPI
    document; the check reads the headers itself."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def run(request: Request) -> Principal:
        principal = await _authenticate(request, scope, listener)
        request.state.principal = principal
        return principal

    # async: runs on the event loop (a plain def would go through the thread pool on every request).
    async def check(request: Request, _key: Annotated[Any, Depends(SERVICE_KEY)]) -> Principal:
        return await run(request)

    async def check_with_token(request: Request, _key: Annotated[Any, Depends(SERVICE_KEY)],
                               _token: Annotated[Any, Depends(LISTENER_TOKEN)]) -> Principal:
        return await run(request)

    return check if listener is ListenerAccess.NEVER else check_with_token


async def _authenticate(request: Request, scope: str, access: ListenerAccess) -> Principal:
    auth: Authenticator = request.app.state.auth
    if auth.demo_mode:
        return None
    secret = presented_key(request)
    if secret is None:
        raise _unauthenticated("an API key or a listener token is required: send 'Authorization: Bearer "
                               "<key or token>'")
    key = auth.identify(secret) if auth.keys else None
    if key is not None:
        if scope not in key.scopes:
            raise ApiError(403, "forbidden", f"the key {key.name!r} lacks the {scope!r} scope")
        wait_s = auth.take_token(key)
        if wait_s > 0:
            raise rate_limited(f"the key {key.name!r}", key.rate_per_s, wait_s)
        return key
    if auth.tokens is None or not _JWT_SHAPE.match(secret):
        raise _unauthenticated("the API key is not valid")
    try:
        who = await auth.tokens.verify(secret)
    except InvalidToken as exc:
        raise _unauthenticated(exc.reason) from None
    if access is ListenerAccess.NEVER:
        raise ApiError(403, "forbidden", "a listener token cannot use this route: it needs a service key")
    if access is ListenerAccess.OWN:
        owner = request.path_params.get("user_id")
        if owner != who.user_id:
            raise ApiError(403, "forbidden", "a listener token reaches only its own listener's data")
    wait_s = auth.take_listener_token(who)
    if wait_s > 0:
        raise rate_limited("this listener", auth.listener_rate_per_s, wait_s)
    return who


async def current_principal(request: Request) -> Principal:
    """Who the route's `require` let in (None in demo mode)."""
    return getattr(request.state, "principal", None)
