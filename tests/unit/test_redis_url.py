"""The Redis URL → client choice, on both sides (flow and API), without a server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

import flows.redis_io as flow_redis
import serving.redis_client as api_redis
from schemas.redis_url import RedisUrlError, parse_redis_url, redact_redis_url

UNREACHABLE = "redis+cluster://127.0.0.1:1"  # nothing listens on port 1: refused at once


def test_a_cluster_url_lists_its_seed_nodes_credentials_and_tls() -> None:
    target = parse_redis_url("rediss+cluster://app:p%40ss@n1:7000,[::1]:7001,n3/")
    assert target.cluster and target.ssl
    assert target.nodes == (("n1", 7000), ("::1", 7001), ("n3", 6379))
    assert (target.username, target.password) == ("app", "p@ss")
    assert "p@ss" not in repr(target) and "p%40ss" not in repr(target)


@pytest.mark.parametrize("url", ["redis://h:1/2", "rediss://:pw@h:6380/0", "unix:///run/redis.sock?db=1"])
def test_single_server_urls_pass_through_unchanged(url: str) -> None:
    target = parse_redis_url(url)
    assert not target.cluster and target.url == url and target.nodes == ()


@pytest.mark.parametrize("url, problem", [
    ("http://h:1", "unsupported Redis URL scheme"),
    ("h:6379", "unsupported Redis URL scheme"),
    ("redis+cluster://", "names no cluster node"),
    ("redis+cluster://n1:7000/1", "database 0 only"),
    ("redis+cluster://n1:7000?timeout=1", "options in a cluster URL"),
    ("redis+cluster://n1:99999", "bad port"),
    ("redis+cluster://:7000", "has no host"),
])
def test_unusable_urls_say_why(url: str, problem: str) -> None:
    with pytest.raises(RedisUrlError, match=problem):
        parse_redis_url(url)


def test_passwords_never_reach_an_error_message() -> None:
    with pytest.raises(RedisUrlError) as info:
        parse_redis_url("redis+cluster://:hunter2@n1:7000/5")
    assert "hunter2" not in str(info.value)
    assert redact_redis_url("redis://:hunter2@h:1/0") == "redis://:***@h:1/0"


def test_the_flow_gets_a_plain_client_for_one_server() -> None:
    client = flow_redis.connect("redis://127.0.0.1:1/0")
    assert isinstance(client, redis.Redis)


@pytest.mark.parametrize("connect", [flow_redis.connect, api_redis.connect])
def test_blocking_cluster_clients_connect_lazily_and_fail_as_redis_errors(connect: Any) -> None:
    client = connect(UNREACHABLE)  # no connection yet: a cluster that is down does not stop start-up
    with pytest.raises(redis.ConnectionError):
        client.get("k")
    with pytest.raises(redis.ConnectionError):
        client.pipeline(transaction=False)
    client.close()


def test_the_api_gets_asyncio_clients() -> None:
    assert isinstance(api_redis.connect_async("redis://127.0.0.1:1/0"), aioredis.Redis)

    async def read() -> None:
        client = api_redis.connect_async(UNREACHABLE)
        try:
            with pytest.raises(redis.ConnectionError):
                await client.get("k")
            pipe = client.pipeline(transaction=False)
            pipe.get("k")
            with pytest.raises(redis.ConnectionError):
                await pipe.execute()
        finally:
            await client.aclose()

    asyncio.run(read())


class _FlakyPipeline:
    """Fails its first execute, emptying itself as redis-py's pipelines do."""

    def __init__(self, log: list[list[str]], fail: bool) -> None:
        self.commands: list[str] = []
        self._log = log
        self._fail = fail

    def set(self, key: str, _value: object) -> None:
        self.commands.append(key)

    def execute(self) -> list[bool]:
        sent, self.commands = self.commands, []
        self._log.append(sent)
        if self._fail:
            raise redis.ConnectionError("dropped")
        return [True] * len(sent)


def test_pipelined_refills_the_pipeline_on_every_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_redis, "RETRY_FIRST_DELAY_S", 0.0)
    sent: list[list[str]] = []

    class Client:
        attempts = 0

        def pipeline(self, transaction: bool = True) -> _FlakyPipeline:
            Client.attempts += 1
            return _FlakyPipeline(sent, fail=Client.attempts == 1)

    def fill(pipe: _FlakyPipeline) -> None:
        pipe.set("a", 1)
        pipe.set("b", 2)

    assert flow_redis.pipelined(Client(), fill, "test") == [True, True]  # type: ignore[arg-type]
    assert sent == [["a", "b"], ["a", "b"]], "the retry sent the writes again"


def test_reply_columns_read_both_protocols_and_equal_float_of_each_score() -> None:
    flat = [b"a", b"3", b"b", b"2", b"c", b"-1"]
    assert api_redis.reply_columns(flat) == ([b"a", b"b", b"c"], [3, 2, -1])
    assert api_redis.reply_columns([[b"a", 3.0], [b"b", 2.5]]) == ([b"a", b"b"], [3.0, 2.5])
    assert api_redis.reply_columns([]) == ([], [])
    odd = [b"a", b"2.5", b"b", b"1e+20", b"c", b"inf", b"d", b"7"]
    _, scores = api_redis.reply_columns(odd)
    assert scores == [float(v) for v in odd[1::2]] and all(isinstance(v, float) for v in scores)
    whole = [str(n).encode() for n in (0, 1, 17, 2**53)]
    assert [float(v) for v in api_redis.parse_scores(whole)] == [float(v) for v in whole]
