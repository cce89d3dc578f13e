"""Redis from inside the flow: connect by URL, and run writes with retries so nothing is lost.

A write that fails because Redis is unreachable is retried with capped exponential backoff until it
succeeds: the flow stalls (and Kafka buffers) rather than dropping a profile write. Every write is
full-state or commutative, so a retried write is harmless.

`connect(url)` is the one place the flow turns `ENCORE_REDIS_URL` into a client: `redis://` and
`rediss://` give a `redis.Redis`, `redis+cluster://host:port[,host:port]` a
`redis.cluster.RedisCluster` (see `schemas/redis_url.py`). The flow's pipelines work on both: on a
cluster, `pipeline(transaction=False)` splits the queued commands by node and returns the answers in
order; nothing the flow queues needs a transaction (full-state SETs, `ZADD GT`, `HSET`, `HINCRBY`).
A cluster client connects on first use and, when no node answers, raises `redis.ConnectionError`
like a single server's client (redis-py's own `RedisClusterException` is no `RedisError`), so the
retries below and every `except redis.RedisError` treat both alike.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ClusterDownError, RedisClusterException, TryAgainError

from schemas.keys import KeyLayout
from schemas.redis_url import parse_redis_url

log = logging.getLogger(__name__)

T = TypeVar("T")

RedisClient = redis.Redis | RedisCluster
"""What `connect` returns: one server's client, or a cluster's."""

RETRY_FIRST_DELAY_S = 0.05
RETRY_MAX_DELAY_S = 2.0


def connect(url: str) -> RedisClient:
    """A client for `url`: `redis.Redis` for one server, `RedisCluster` for a `redis+cluster://` URL."""
    options: dict[str, Any] = {"socket_timeout": 10, "socket_connect_timeout": 5,
                               "health_check_interval": 30}
    target = parse_redis_url(url)
    if not target.cluster:
        return redis.Redis.from_url(url, **options)
    nodes = [ClusterNode(host, port) for host, port in target.nodes]
    return cast(RedisCluster, ClusterClient(lambda: RedisCluster(
        startup_nodes=nodes, username=target.username, password=target.password, ssl=target.ssl,
        **options)))


@contextlib.contextmanager
def _as_connection_error() -> Iterator[None]:
    try:
        yield
    except RedisClusterException as exc:
        raise redis.ConnectionError(str(exc)) from exc


class _Failing:
    """Calls through to `target`, raising `redis.ConnectionError` for `RedisClusterException`."""

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
            return _Failing(result) if isinstance(result, ClusterPipeline) else result

        return call


class ClusterClient(_Failing):
    """A `RedisCluster` made on first use (so a cluster that is down when the flow starts is retried
    like a server that is down), whose failures are `redis.RedisError`s."""

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


def pipelined(client: RedisClient, fill: Callable[[Any], object], what: str) -> list[Any]:
    """Queue commands with `fill` on a non-transactional pipeline and run it, retrying as
    `with_retries` does. Each attempt fills a fresh pipeline: redis-py empties a pipeline whose
    `execute` failed, so re-running that one would send nothing (and lose the writes)."""

    def attempt() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        fill(pipe)
        return pipe.execute()

    return with_retries(attempt, what)


def with_retries(action: Callable[[], T], what: str) -> T:
    """Run `action` until it succeeds, backing off while Redis is unreachable."""
    delay = RETRY_FIRST_DELAY_S
    attempt = 0
    while True:
        try:
            return action()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, ClusterDownError,
                TryAgainError) as exc:
            attempt += 1
            if attempt == 1 or attempt % 20 == 0:
                log.warning("%s failed (%s); retrying (attempt %d)", what, exc, attempt)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)


class _PipelinePartition(StatelessSinkPartition[tuple[str, Any]]):
    def __init__(self, url: str, keys: KeyLayout, fill: PipelineFill, what: str) -> None:
        self._client = connect(url)
        self._keys = keys
        self._fill = fill
        self._what = what

    def write_batch(self, items: list[tuple[str, Any]]) -> None:
        if items:
            pipelined(self._client, lambda pipe: self._fill(pipe, self._keys, items), self._what)

    def close(self) -> None:
        self._client.close()


PipelineFill = Callable[[Any, KeyLayout, list[tuple[str, Any]]], object]
"""Queues a batch's writes on a pipeline: `fill(pipe, keys, items)`."""


class PipelineSink(DynamicSink[tuple[str, Any]]):
    """A sink whose every batch is one pipeline of full-state writes, queued by `fill` (retried as
    `pipelined` does): the flow's small Redis outputs share this one implementation."""

    def __init__(self, url: str, keys: KeyLayout, fill: PipelineFill, what: str) -> None:
        self._url = url
        self._keys = keys
        self._fill = fill
        self._what = what

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PipelinePartition:
        return _PipelinePartition(self._url, self._keys, self._fill, self._what)
