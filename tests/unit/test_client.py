"""The player-app client: encore/client.py (EncoreClient), against an in-process mock transport."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from encore.client import EncoreClient, EventRejected

BASE = "http://encore.test"


class Server:
    """Records every request; answers with the scripted responses, then 202."""

    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[httpx.Request] = []

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        return [orjson.loads(r.content) for r in self.requests]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else 202
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        body = orjson.loads(request.content)
        return httpx.Response(step, json={"accepted": len(body)} if step == 202 else {"error": "x"})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    yield calls


class Ceiling:
    """A random source whose uniform(a, b) is always b: the jittered backoff at its ceiling, so the
    exponential sequence itself can be checked exactly (test_client_retries.py checks the jitter)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make_client(server: Server, **options: Any) -> tuple[EncoreClient, list[tuple[Exception, list]]]:
    errors: list[tuple[Exception, list]] = []
    options.setdefault("on_error", lambda exc, batch: errors.append((exc, batch)))
    options.setdefault("rng", Ceiling())
    client = EncoreClient(BASE, autostart=False, **options)
    headers = client._http.headers
    client._http.close()
    client._http = httpx.Client(transport=httpx.MockTransport(server), base_url=BASE, headers=headers)
    return client, errors


# -- emitting ----------------------------------------------------------------------------------


def test_events_get_unique_event_ids() -> None:
    client, _ = make_client(Server(), batch_size=1000)
    ids = [client.play("u", f"t{i}") for i in range(200)]
    assert len(set(ids)) == 200
    assert all(isinstance(i, str) and len(i) == 32 for i in ids)
    assert [e["event_id"] for e in client.pending()] == ids


def test_caller_event_id_is_kept() -> None:
    client, _ = make_client(Server())
    assert client.like("u", "t", event_id="my-id") == "my-id"
    assert client.pending()[0]["event_id"] == "my-id"


def test_helpers_build_the_documented_event() -> None:
    client, _ = make_client(Server())
    before = int(time.time() * 1000)
    client.play("u", "t1")
    client.complete("u", "t2")
    client.like("u", "t3")
    client.dislike("u", "t4", ts=123)
    client.skip("u", "t5", position_ms=1_000, duration_ms=200_000, session_id="s")
    client.skip("u", "t6")
    after = int(time.time() * 1000)
    events = client.pending()
    assert [e["type"] for e in events] == ["play", "complete", "like", "dislike", "skip", "skip"]
    assert [e["track_id"] for e in events] == ["t1", "t2", "t3", "t4", "t5", "t6"]
    assert all(e["user_id"] == "u" for e in events)
    assert before <= events[0]["ts"] <= after
    assert events[3]["ts"] == 123
    assert events[4]["position_ms"] == 1_000
    assert events[4]["duration_ms"] == 200_000
    assert events[4]["session_id"] == "s"
    assert "position_ms" not in events[5] and "duration_ms" not in events[5]


# -- batching ----------------------------------------------------------------------------------


def test_flush_sends_batches_of_at_most_batch_size() -> None:
    server = Server()
    client, errors = make_client(server, batch_size=7)
    # Fill the buffer directly past batch_size so emit's own auto-flush does not split it first.
    ids = []
    with client._lock:
        for i in range(20):
            ids.append(f"e{i}")
            client._buffer.append({"event_id": f"e{i}", "user_id": "u", "track_id": "t", "type": "play",
                                   "ts": i})
    client.flush()
    assert [len(b) for b in server.batches] == [7, 7, 6]
    assert [e["event_id"] for b in server.batches for e in b] == ids
    assert all(r.method == "POST" and r.url.path == "/v1/events" for r in server.requests)
    assert client.pending() == []
    assert (client.stats.sent, client.stats.batches, client.stats.retries) == (20, 3, 0)
    assert errors == []
    assert len(client.stats.latencies_ms) == 3


def test_emit_flushes_when_a_batch_is_full_without_a_thread() -> None:
    server = Server()
    client, _ = make_client(server, batch_size=5)
    ids = [client.play("u", f"t{i}") for i in range(12)]
    assert [len(b) for b in server.batches] == [5, 5]
    assert [e["event_id"] for e in client.pending()] == ids[10:]
    client.flush()
    assert [len(b) for b in server.batches] == [5, 5, 2]
    assert [e["event_id"] for b in server.batches for e in b] == ids


def test_flush_with_nothing_pending_sends_nothing() -> None:
    server = Server()
    client, _ = make_client(server)
    client.flush()
    assert server.requests == []


def test_close_flushes_pending() -> None:
    server = Server()
    client, _ = make_client(server)
    client.like("u", "t")
    client.close()
    assert len(server.batches) == 1
    assert client.stats.sent == 1


def test_api_key_is_sent_as_bearer_token() -> None:
    server = Server()
    client, _ = make_client(server, api_key="s3cret")
    client.play("u", "t")
    client.flush()
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"


# -- retries -----------------------------------------------------------------------------------


def test_503_then_202_is_retried_with_the_same_event_ids(sleeps: list[float]) -> None:
    server = Server([503])
    client, errors = make_client(server)
    ids = [client.play("u", f"t{i}") for i in range(3)]
    client.flush()
    assert len(server.requests) == 2
    first, second = server.batches
    assert [e["event_id"] for e in first] == ids
    assert second == first  # byte-for-byte the same events: idempotent on event_id
    assert errors == []
    assert (client.stats.sent, client.stats.retries, client.stats.failed) == (3, 1, 0)
    assert sleeps == [0.1]


def test_429_is_retried(sleeps: list[float]) -> None:
    server = Server([429, 500])
    client, errors = make_client(server)
    client.play("u", "t")
    client.flush()
    assert len(server.requests) == 3
    assert errors == []
    assert client.stats.sent == 1
    assert sleeps == [0.1, 0.2]


def test_422_is_not_retried_and_goes_to_on_error(sleeps: list[float]) -> None:
    body = {"error": {"code": "invalid_events", "message": "1 of 2 events are invalid", "details": []}}
    server = Server([httpx.Response(422, json=body)])
    client, errors = make_client(server)
    client.play("u", "t1")
    client.emit("u", "t2", "nope")
    client.flush()
    assert len(server.requests) == 1
    assert sleeps == []
    assert len(errors) == 1
    exc, batch = errors[0]
    assert isinstance(exc, EventRejected)
    assert exc.status == 422
    assert exc.body == body
    assert [e["track_id"] for e in batch] == ["t1", "t2"]
    stats = client.stats
    assert (stats.rejected, stats.sent, stats.retries, stats.failed) == (2, 0, 0, 0)


def test_rejected_batch_does_not_stop_later_batches(sleeps: list[float]) -> None:
    server = Server([422])
    client, errors = make_client(server, batch_size=2)
    client._batch_size = 1000  # queue everything first
    for i in range(4):
        client.play("u", f"t{i}")
    client._batch_size = 2
    client.flush()
    assert [len(b) for b in server.batches] == [2, 2]
    assert len(errors) == 1
    assert client.stats.sent == 2
    assert client.stats.rejected == 2


def test_network_errors_exhaust_retries_then_on_error(sleeps: list[float]) -> None:
    server = Server([httpx.ConnectError("refused")] * 10)
    client, errors = make_client(server, max_retries=3)
    ids = [client.play("u", f"t{i}") for i in range(4)]
    client.flush()
    assert len(server.requests) == 4  # one try + three retries
    assert all([e["event_id"] for e in b] == ids for b in server.batches)
    assert sleeps == [0.1, 0.2, 0.4]
    assert len(errors) == 1
    exc, batch = errors[0]
    assert isinstance(exc, httpx.ConnectError)
    assert [e["event_id"] for e in batch] == ids
    assert (client.stats.failed, client.stats.retries, client.stats.sent) == (4, 3, 0)
    assert client.pending() == []


def test_backoff_ceiling_is_capped_at_five_seconds(sleeps: list[float]) -> None:
    server = Server([503] * 20)
    client, errors = make_client(server, max_retries=9)
    client.play("u", "t")
    client.flush()
    assert sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert isinstance(errors[0][0], EventRejected)
    assert errors[0][0].status == 503
    assert client.stats.failed == 1


def test_zero_retries_fails_at_once(sleeps: list[float]) -> None:
    server = Server([httpx.ReadTimeout("slow")])
    client, errors = make_client(server, max_retries=0)
    client.play("u", "t")
    client.flush()
    assert len(server.requests) == 1
    assert sleeps == []
    assert client.stats.failed == 1
    assert isinstance(errors[0][0], httpx.ReadTimeout)


def test_without_on_error_failures_are_logged_not_raised(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    server = Server([400])
    client = EncoreClient(BASE, autostart=False, rng=Ceiling())
    client._http = httpx.Client(transport=httpx.MockTransport(server), base_url=BASE)
    client.play("u", "t")
    with caplog.at_level("WARNING", logger="encore.client"):
        client.flush()
    assert "dropping 1 events" in caplog.text
    assert client.stats.rejected == 1


def test_non_json_4xx_goes_to_on_error(sleeps: list[float]) -> None:
    server = Server([httpx.Response(413, text="<html>Request Entity Too Large</html>")])
    client, errors = make_client(server)
    client.play("u", "t")
    client.flush()
    assert len(errors) == 1
    assert isinstance(errors[0][0], EventRejected)
    assert errors[0][0].status == 413
