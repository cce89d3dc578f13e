"""What a Redis URL names: one server, or a Redis Cluster (pure parsing; no client is made here).

The flow (`flows/redis_io.py`) and the API (`serving/redis_client.py`) each build their client from
this, so both read one setting, `ENCORE_REDIS_URL`, the same way:

| URL | what |
|---|---|
| `redis://[[user]:password@]host[:port][/db]` | one server (redis-py's own URL syntax, passed on as is) |
| `rediss://...` | the same over TLS |
| `unix://[[user]:password@]/path/to/socket[?db=N]` | one server on a Unix socket |
| `redis+cluster://[[user]:password@]host:port[,host:port...]` | a Redis Cluster, from its seed nodes |
| `rediss+cluster://...` | the same over TLS |

A cluster URL lists seed nodes only: the client discovers the others (and follows resharding) from
`CLUSTER SLOTS`. A cluster has one database, so its URL takes no `/db` other than `/0`. Every key of
Encore's layout carries a hash tag (`schemas/keys.py`), so keys read together share a slot.

>>> parse_redis_url("redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001")
RedisTarget(cluster=True, url='redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7001')
>>> parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2").nodes
(('10.0.0.1', 7000), ('10.0.0.2', 6379))
>>> parse_redis_url("redis://cache:6379/0").cluster
False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
"""Cluster URL schemes → whether they use TLS."""
SINGLE_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PORT = 6379


class RedisUrlError(ValueError):
    """A Redis URL Encore cannot use; the message says why (never with the password)."""


@dataclass(frozen=True)
class RedisTarget:
    """A parsed Redis URL. `repr` shows the URL with its password replaced by `***`."""

    cluster: bool
    url: str = field(repr=False)
    """The URL as given (for one server: what `redis.Redis.from_url` takes)."""
    nodes: tuple[tuple[str, int], ...] = field(default=(), repr=False)
    """A cluster's seed nodes (host, port)."""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ssl: bool = field(default=False, repr=False)

    def __repr__(self) -> str:
        return f"RedisTarget(cluster={self.cluster}, url={redact_redis_url(self.url)!r})"


def redact_redis_url(url: str) -> str:
    """The URL with any password replaced by `***` (works for multi-host cluster URLs too).

    >>> redact_redis_url("redis+cluster://app:pw@h1:7000,h2:7000")
    'redis+cluster://app:***@h1:7000,h2:7000'
    >>> redact_redis_url("redis://cache:6379/0")
    'redis://cache:6379/0'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}{slash}{path}"


def _split_userinfo(netloc: str) -> tuple[str | None, str | None, str]:
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None), hosts


def _node(spec: str, url: str) -> tuple[str, int]:
    spec = spec.strip()
    if spec.startswith("["):  # [IPv6]:port
        host, _, rest = spec[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = spec.partition(":")
    if not host:
        raise RedisUrlError(f"a node of {redact_redis_url(url)!r} has no host")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError(f"node {spec!r} of {redact_redis_url(url)!r} has a bad port")
    return host, int(port_text)


def parse_redis_url(url: str) -> RedisTarget:
    """Parse `ENCORE_REDIS_URL`; raises RedisUrlError for a scheme or cluster URL it cannot use.

    >>> parse_redis_url("memcached://x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    schemas.redis_url.RedisUrlError: unsupported Redis URL scheme 'memcached': use redis://, ...
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or (scheme not in SINGLE_SCHEMES and scheme not in CLUSTER_SCHEMES):
        raise RedisUrlError(
            f"unsupported Redis URL scheme {scheme!r}: use redis://, rediss://, unix://, "
            "redis+cluster:// or rediss+cluster://"
        )
    if scheme in SINGLE_SCHEMES:
        return RedisTarget(cluster=False, url=url, ssl=scheme == "rediss")

    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise RedisUrlError(f"a Redis Cluster has database 0 only; {redact_redis_url(url)!r} names /{path}")
    if query:
        raise RedisUrlError(f"{redact_redis_url(url)!r}: options in a cluster URL are not supported")
    username, password, hosts = _split_userinfo(netloc)
    nodes = tuple(_node(spec, url) for spec in hosts.split(",") if spec.strip())
    if not nodes:
        raise RedisUrlError(f"{redact_redis_url(url)!r} names no cluster node")
    return RedisTarget(cluster=True, url=url, nodes=nodes, username=username, password=password,
                       ssl=CLUSTER_SCHEMES[scheme])
