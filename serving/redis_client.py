"""Redis clients of the API, from `ENCORE_REDIS_URL`: the one place serving picks a client class.

`redis://` and `rediss://` give `redis.Redis` (and `redis.asyncio.Redis`); `redis+cluster://host:port
[,host:port]` gives `redis.cluster.RedisCluster` (and `redis.asyncio.cluster.RedisCluster`). The URL
syntax is parsed in `schemas/redis_url.py`, shared with the flow. Everything the API sends works on
a cluster: single-key reads, and non-transactional pipelines (split by node, answered in order).

Cluster clients connect on first use (an API started while the cluster is down comes up and answers
503 until it is back) and fail like a single server's: `redis.ConnectionError`, a `RedisError`,
where redis-py raises `RedisClusterException` (which is not one), so the API's `RedisError`
handling (503 `redis_unavailable`, readiness, metrics) covers both.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import ClusterPipeline as AsyncClusterPipeline
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException

from schemas.redis_url import parse_redis_url

SyncRedis = redis.Redis | RedisCluster
"""A blocking client: one server's or a cluster's."""
AsyncRedis = aioredis.Redis | AsyncRedisCluster
"""An asyncio client: one server's or a cluster's."""


def connect(url: str, socket_timeout: float = 5.0, socket_connect_timeout: float = 2.0) -> SyncRedis:
    """A blocking client for `url` (used from threads: lag, metrics)."""
    target = parse_redis_url(url)
    if not target.cluster:
        return redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                    socket_connect_timeout=socket_connect_timeout)
    nodes = [ClusterNode(host, port) for host, port in target.nodes]
    return cast(RedisCluster, _ClusterClient(lambda: RedisCluster(
        startup_nodes=nodes, username=target.username, password=target.password, ssl=target.ssl,
        socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout)))


def connect_async(url: str, socket_timeout: float = 5.0,
                  socket_connect_timeout: float = 2.0) -> AsyncRedis:
    """An asyncio client for `url` (the request path). Connects lazily, on first use."""
    target = parse_redis_url(url)
    if not target.cluster:
        return aioredis.Redis.from_url(url, socket_timeout=socket_timeout,
                                       socket_connect_timeout=socket_connect_timeout)
    client = AsyncRedisCluster(  # connects on its first command
        startup_nodes=[AsyncClusterNode(host, port) for host, port in target.nodes],
        username=target.username, password=target.password, ssl=target.ssl,
        socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout,
    )
    return cast(AsyncRedisCluster, _Failing(client))


@contextlib.contextmanager
def _as_connection_error() -> Iterator[None]:
    try:
        yield
    except RedisClusterException as exc:
        raise redis.ConnectionError(str(exc)) from exc


_PIPELINES = (ClusterPipeline, AsyncClusterPipeline)


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    with _as_connection_error():
        return await awaitable


class _Failing:
    """Calls through to a cluster client (or pipeline), raising `redis.ConnectionError` for
    `RedisClusterException`, for blocking and for asyncio methods alike."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def _real(self) -> Any:
        return self._target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real(), name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            with _as_connection_error():
                result = attr(*args, **kwargs)
            if isinstance(result, _PIPELINES):  # (an asyncio pipeline is awaitable too)
                return _Failing(result)
            if inspect.isawaitable(result):  # asyncio commands fail when awaited
                return _awaited(result)
            return result

        return call


class _ClusterClient(_Failing):
    """A blocking `RedisCluster` made on first use (its constructor connects)."""

    def __init__(self, make: Callable[[], RedisCluster]) -> None:
        super().__init__(None)
        self._make = make
        self._lock = threading.Lock()

    def _real(self) -> RedisCluster:
        if self._target is None:
            with self._lock, _as_connection_error():
                if self._target is None:
                    self._target = self._make()
        return self._target

    def close(self) -> None:
        if self._target is not None:
            self._target.close()


def zrevrange_with_scores(pipe: Any, key: str, stop: int) -> None:
    """Queue `ZREVRANGE key 0 stop WITHSCORES` without redis-py's reply conversion (on RESP3 it
    re-encodes every score as text and parses it back); read the reply with `score_pairs`."""
    pipe.execute_command("ZREVRANGE", key, 0, stop, "WITHSCORES")


def score_pairs(raw: Any) -> Sequence[Sequence[Any]]:
    """A raw `zrevrange_with_scores` reply as `(member, score)` pairs, for
    `schemas.values.decode_neighbours`: RESP3 nests them (the score a float), RESP2 is flat."""
    if not raw or isinstance(raw[0], (list, tuple)):
        return raw or []
    members = iter(raw)
    return list(zip(members, members, strict=True))


def reply_columns(raw: Any) -> tuple[Sequence[bytes], list[float] | list[int]]:
    """A raw `zrevrange_with_scores` reply as (members, scores), without a pair per entry: members
    as bytes; scores as numbers equal to `float` of each (`parse_scores`)."""
    if not raw:
        return [], []
    if isinstance(raw[0], (list, tuple)):
        return [m for m, _ in raw], [float(v) for _, v in raw]
    return raw[0::2], parse_scores(raw[1::2])


def parse_scores(values: Sequence[bytes]) -> list[float] | list[int]:
    """Scores as Redis writes them (`%.17g`): `int` when every one is an integer, as counts are
    (exact, and `int` of bytes costs a fraction of `float`), else `float`."""
    try:
        return list(map(int, values))
    except ValueError:
        return list(map(float, values))
