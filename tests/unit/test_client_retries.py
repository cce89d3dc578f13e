"""The player clients' retries: Retry-After on 429/503, full-jitter backoff, and the asyncio twin
(AsyncEncoreClient) sharing the batching and retry decisions with EncoreClient."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest

from encore.client import AsyncEncoreClient, EncoreClient, EventRejected, backoff_ceiling
from tests.unit.test_client import BASE, Ceiling, Server, make_client


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    yield calls


def busy(status: int, retry_after: str | None) -> httpx.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers, json={"error": {"code": "busy"}})


# -- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured_on_429_and_503(sleeps: list[float], status: int) -> None:
    server = Server([busy(status, "7"), busy(status, "0")])
    client, errors = make_client(server)
    ids = [client.play("u", f"t{i}") for i in range(3)]
    client.flush()
    assert sleeps == [7.0, 0.0]
    assert len(server.requests) == 3 and errors == []
    assert all([e["event_id"] for e in batch] == ids for batch in server.batches)
    assert client.stats.sent == 3 and client.stats.retries == 2


def test_retry_after_as_an_http_date(sleeps: list[float]) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    server = Server([busy(503, format_datetime(when, usegmt=True))])
    client, _ = make_client(server)
    client.play("u", "t")
    client.flush()
    (waited,) = sleeps
    assert 25.0 <= waited <= 30.0


def test_retry_after_is_capped(sleeps: list[float]) -> None:
    server = Server([busy(429, "3600")])
    client, _ = make_client(server, max_retry_after_s=20.0)
    client.play("u", "t")
    client.flush()
    assert sleeps == [20.0]


@pytest.mark.parametrize("response", [busy(500, "9"), busy(502, "9"), busy(429, "soon"), busy(503, None)])
def test_without_a_usable_retry_after_the_backoff_applies(sleeps: list[float],
                                                          response: httpx.Response) -> None:
    server = Server([response])
    client, _ = make_client(server)  # Ceiling: the backoff's first ceiling, 0.1 s
    client.play("u", "t")
    client.flush()
    assert sleeps == [0.1]


def test_retry_after_does_not_make_a_4xx_retryable(sleeps: list[float]) -> None:
    server = Server([busy(400, "1")])
    client, errors = make_client(server)
    client.play("u", "t")
    client.flush()
    assert sleeps == [] and len(server.requests) == 1
    assert isinstance(errors[0][0], EventRejected) and errors[0][0].status == 400


def test_the_last_failure_is_reported_after_retry_afters(sleeps: list[float]) -> None:
    server = Server([busy(429, "1")] * 5)
    client, errors = make_client(server, max_retries=2)
    client.play("u", "t")
    client.flush()
    assert sleeps == [1.0, 1.0] and len(server.requests) == 3
    assert isinstance(errors[0][0], EventRejected) and errors[0][0].status == 429
    assert client.stats.failed == 1


# -- full jitter ---------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_the_exponential_ceiling(sleeps: list[float]) -> None:
    server = Server([503] * 9)
    client, _ = make_client(server, max_retries=8, rng=random.Random(42))
    client.play("u", "t")
    client.flush()
    assert len(sleeps) == 8
    for attempt, waited in enumerate(sleeps):
        assert 0.0 <= waited <= backoff_ceiling(attempt)
    assert len(set(sleeps)) == 8
    assert sleeps != [backoff_ceiling(a) for a in range(8)]


def test_jitter_spreads_over_the_whole_range() -> None:
    client = EncoreClient(BASE, autostart=False, rng=random.Random(7))
    draws = [client.delay(4) for _ in range(2000)]  # ceiling 1.6 s
    assert min(draws) < 0.1 and max(draws) > 1.5
    assert 0.7 < sum(draws) / len(draws) < 0.9  # the mean of U(0, 1.6)
    client._http.close()


def test_clients_that_fail_together_do_not_retry_together(sleeps: list[float]) -> None:
    waits = []
    for seed in range(20):
        server = Server([503])
        client, _ = make_client(server, rng=random.Random(seed))
        client.play("u", "t")
        client.flush()
        waits.append(sleeps.pop())
    assert len({round(w, 6) for w in waits}) == 20


# -- the asyncio twin -----------------------------------------------------------------------------


@pytest.fixture
def async_sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    calls: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float, *args: Any) -> None:
        calls.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    yield calls


def make_async(server: Server, **options: Any) -> tuple[AsyncEncoreClient, list[tuple[Exception, list]]]:
    errors: list[tuple[Exception, list]] = []
    options.setdefault("on_error", lambda exc, batch: errors.append((exc, batch)))
    options.setdefault("rng", Ceiling())
    options.setdefault("autostart", False)
    return AsyncEncoreClient(BASE, transport=httpx.MockTransport(server), **options), errors


def test_async_client_batches_and_retries_with_the_same_event_ids(async_sleeps: list[float]) -> None:
    server = Server([503, httpx.ConnectError("refused"), busy(429, "2")])

    async def main() -> list[str]:
        client, errors = make_async(server, batch_size=4, api_key="k-1")
        async with client:
            ids = [client.play("u", f"t{i}") for i in range(6)]
            await client.flush()
        assert errors == []
        assert client.stats.sent == 6 and client.stats.batches == 2 and client.stats.retries == 3
        return ids

    ids = asyncio.run(main())
    assert async_sleeps == [0.1, 0.2, 2.0]
    assert [len(b) for b in server.batches] == [4, 4, 4, 4, 2]
    assert all([e["event_id"] for e in b] == ids[:4] for b in server.batches[:4])
    assert [e["event_id"] for e in server.batches[4]] == ids[4:]
    assert all(r.headers["authorization"] == "Bearer k-1" for r in server.requests)


def test_async_client_rejects_a_4xx_without_retrying(async_sleeps: list[float]) -> None:
    body = {"error": {"code": "invalid_events", "details": []}}
    server = Server([httpx.Response(422, json=body)])

    async def main() -> list[tuple[Exception, list]]:
        client, errors = make_async(server)
        client.emit("u", "t", "nope")
        await client.aclose()
        return errors

    errors = asyncio.run(main())
    assert async_sleeps == [] and len(server.requests) == 1
    assert isinstance(errors[0][0], EventRejected) and errors[0][0].body == body


def test_async_client_gives_up_after_max_retries(async_sleeps: list[float]) -> None:
    server = Server([httpx.ReadTimeout("slow")] * 5)

    async def main() -> AsyncEncoreClient:
        client, errors = make_async(server, max_retries=2)
        client.play("u", "t")
        await client.aclose()
        assert isinstance(errors[0][0], httpx.ReadTimeout)
        return client

    client = asyncio.run(main())
    assert async_sleeps == [0.1, 0.2] and client.stats.failed == 1 and len(server.requests) == 3


def test_async_background_task_flushes_full_batches_and_close_sends_the_rest() -> None:
    server = Server()

    async def main() -> None:
        client, _ = make_async(server, autostart=True, batch_size=5, flush_interval_s=30.0)
        async with client:
            for i in range(5):
                client.play("u", f"t{i}")
            for _ in range(200):  # a full batch wakes the flusher long before its 30 s tick
                if server.requests:
                    break
                await asyncio.sleep(0.01)
            assert [len(b) for b in server.batches] == [5]
            client.like("u", "last")
        assert [len(b) for b in server.batches] == [5, 1]
        assert client.pending() == []

    asyncio.run(main())


def test_both_clients_build_the_same_events() -> None:
    sync_server, async_server = Server(), Server()
    sync_client, _ = make_client(sync_server)

    def fill(client: Any) -> None:
        client.play("u", "t1", ts=1, event_id="a")
        client.complete("u", "t2", ts=2, event_id="b")
        client.like("u", "t3", ts=3, event_id="c")
        client.dislike("u", "t4", ts=4, event_id="d")
        client.skip("u", "t5", position_ms=1, duration_ms=2, ts=5, event_id="e", session_id="s")

    fill(sync_client)
    sync_client.flush()

    async def main() -> None:
        client, _ = make_async(async_server)
        fill(client)
        await client.aclose()

    asyncio.run(main())
    assert orjson.loads(sync_server.requests[0].content) == orjson.loads(async_server.requests[0].content)
