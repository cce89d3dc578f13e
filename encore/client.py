"""A small client for player apps: batching, retries, and event ids made for the caller.

Events are buffered and sent to `POST /v1/events` in batches (by size or age). A batch that fails
with a network error, a 429 or a 5xx is retried: after the server's `Retry-After` when a 429 or 503
gives one (capped at `max_retry_after_s`), else after a jittered exponential backoff ("full
jitter": a uniform draw between 0 and min(5 s, 0.1 s × 2^attempt), so clients that failed together
do not retry together). Since each event carries its own `event_id`, a retried batch is applied
once (the flow drops duplicates).

`EncoreClient` is synchronous (a background thread flushes); `AsyncEncoreClient` is its asyncio
twin (httpx.AsyncClient, a background task). Both share the batching, the retry decisions and the
statistics (`_ClientCore`); only the waiting and the HTTP call differ.

>>> client = EncoreClient("http://127.0.0.1:8000", autostart=False)
>>> event_id = client.like("alice", "track-1")
>>> len(client.pending())
1
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
RETRY_AFTER_STATUSES = frozenset({429, 503})


class EventRejected(Exception):
    """The API refused a batch (a 4xx other than 429: retrying will not help), or a retried
    failure (5xx, 429) outlived the retries."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class ClientStats:
    sent: int = 0
    batches: int = 0
    retries: int = 0
    rejected: int = 0
    failed: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class Uniform(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


def new_event_id() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None when absent
    or unreadable.

    >>> parse_retry_after("3"), parse_retry_after(" 0 "), parse_retry_after("soon"), parse_retry_after(None)
    (3.0, 0.0, None, None)
    >>> parse_retry_after("Wed, 21 Oct 2026 07:28:05 GMT", now=datetime(2026, 10, 21, 7, 28, tzinfo=UTC))
    5.0
    >>> parse_retry_after("-4")
    0.0
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def backoff_ceiling(attempt: int, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S) -> float:
    """The most the `attempt`-th retry (0-based) waits: base × 2^attempt, capped.

    >>> [backoff_ceiling(a) for a in range(8)]
    [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    """
    return min(cap_s, base_s * 2 ** min(attempt, 60))


class _ClientCore:
    """What both clients share: the buffer, the event helpers, the retry decisions, the stats."""

    def __init__(self, *, batch_size: int, flush_interval_s: float, max_retries: int,
                 max_retry_after_s: float, on_error: Callable[[Exception, list[dict[str, Any]]], None] | None,
                 rng: Uniform | None) -> None:
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_retries = max(0, max_retries)
        self._max_retry_after_s = max_retry_after_s
        self._on_error = on_error
        self._rng: Uniform = rng if rng is not None else random.Random()
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.stats = ClientStats()

    # -- emitting ---------------------------------------------------------------------------
    def _queue(self, user_id: str, track_id: str, type: str, ts: int | None, event_id: str | None,
               fields: dict[str, Any]) -> tuple[str, bool]:
        event = {"event_id": event_id or new_event_id(), "user_id": user_id, "track_id": track_id,
                 "type": type, "ts": ts if ts is not None else now_ms(), **fields}
        with self._lock:
            self._buffer.append(event)
            full = len(self._buffer) >= self._batch_size
        return event["event_id"], full

    def emit(self, user_id: str, track_id: str, type: str, *, ts: int | None = None,
             event_id: str | None = None, **fields: Any) -> str:
        """Queue one event; returns its event_id. Extra fields: position_ms, duration_ms,
        session_id, context."""
        event_id, _full = self._queue(user_id, track_id, type, ts, event_id, fields)
        return event_id

    def play(self, user_id: str, track_id: str, **fields: Any) -> str:
        return self.emit(user_id, track_id, "play", **fields)

    def complete(self, user_id: str, track_id: str, **fields: Any) -> str:
        return self.emit(user_id, track_id, "complete", **fields)

    def like(self, user_id: str, track_id: str, **fields: Any) -> str:
        return self.emit(user_id, track_id, "like", **fields)

    def dislike(self, user_id: str, track_id: str, **fields: Any) -> str:
        return self.emit(user_id, track_id, "dislike", **fields)

    def skip(self, user_id: str, track_id: str, *, position_ms: int | None = None,
             duration_ms: int | None = None, **fields: Any) -> str:
        if position_ms is not None:
            fields["position_ms"] = position_ms
        if duration_ms is not None:
            fields["duration_ms"] = duration_ms
        return self.emit(user_id, track_id, "skip", **fields)

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._buffer)

    def _next_batch(self) -> list[dict[str, Any]]:
        with self._lock:
            batch, self._buffer = self._buffer[: self._batch_size], self._buffer[self._batch_size:]
        return batch

    # -- deciding -----------------------------------------------------------------------------
    def _decide(self, batch: list[dict[str, Any]], result: httpx.Response | Exception, attempt: int,
                started: float) -> float | None:
        """After one try: None when the batch is settled (sent, rejected or given up), else how many
        seconds to wait before the next try of the same batch (the same event ids)."""
        retry_after: float | None = None
        if isinstance(result, httpx.Response):
            status = result.status_code
            if 200 <= status < 300:
                self.stats.sent += len(batch)
                self.stats.batches += 1
                self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
                return None
            if 400 <= status < 500 and status != 429:
                self.stats.rejected += len(batch)
                try:
                    body: Any = result.json()
                except ValueError:  # e.g. a proxy's HTML error page
                    body = result.text
                self._report(EventRejected(status, body), batch)
                return None
            error: Exception = EventRejected(status, result.text)
            if status in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(result.headers.get("retry-after"))
        else:
            error = result
        if attempt >= self._max_retries:
            self.stats.failed += len(batch)
            self._report(error, batch)
            return None
        self.stats.retries += 1
        return self.delay(attempt, retry_after)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before retry number `attempt` (0-based): the server's Retry-After when it gave
        one (at most `max_retry_after_s`), else full jitter over the exponential ceiling."""
        if retry_after is not None:
            return min(retry_after, self._max_retry_after_s)
        return self._rng.uniform(0.0, backoff_ceiling(attempt))

    def _report(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        if self._on_error is not None:
            self._on_error(error, batch)
        else:
            log.warning("dropping %d events: %s", len(batch), error)


class EncoreClient(_ClientCore):
    """The synchronous client: a daemon thread flushes every `flush_interval_s`."""

    def __init__(
        self,
        base_url: str,
        *,
        batch_size: int = 200,
        flush_interval_s: float = 0.1,
        max_retries: int = 6,
        max_retry_after_s: float = 60.0,
        timeout_s: float = 15.0,
        api_key: str | None = None,
        autostart: bool = True,
        on_error: Callable[[Exception, list[dict[str, Any]]], None] | None = None,
        rng: Uniform | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, flush_interval_s=flush_interval_s, max_retries=max_retries,
                         max_retry_after_s=max_retry_after_s, on_error=on_error, rng=rng)
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, headers=headers)
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if autostart:
            self._thread = threading.Thread(target=self._run, name="encore-client", daemon=True)
            self._thread.start()

    def emit(self, user_id: str, track_id: str, type: str, *, ts: int | None = None,
             event_id: str | None = None, **fields: Any) -> str:
        event_id, full = self._queue(user_id, track_id, type, ts, event_id, fields)
        if full and self._thread is None:
            self.flush()
        return event_id

    def flush(self) -> None:
        """Send everything queued now (blocking until acknowledged or given up)."""
        with self._send_lock:
            while batch := self._next_batch():
                self._send(batch)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            result: httpx.Response | Exception
            try:
                result = self._http.post("/v1/events", json=batch)
            except httpx.HTTPError as exc:
                result = exc
            wait = self._decide(batch, result, attempt, started)
            if wait is None:
                return
            time.sleep(wait)
            attempt += 1

    def _run(self) -> None:
        while not self._stop.wait(self._flush_interval_s):
            self.flush()

    def close(self) -> None:
        """Send what is queued, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        self._http.close()

    def __enter__(self) -> EncoreClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncEncoreClient(_ClientCore):
    """The asyncio twin of EncoreClient: `emit` and its helpers queue at once (no await), a
    background task flushes every `flush_interval_s` while the client is open (`async with`, or
    `start()` ... `await aclose()`), and `await flush()` sends everything queued now.

    >>> async def main() -> None:
    ...     async with AsyncEncoreClient("http://127.0.0.1:8000", autostart=False) as client:
    ...         client.like("alice", "track-1")
    ...         assert len(client.pending()) == 1
    ...         client._buffer.clear()
    >>> asyncio.run(main())
    """

    def __init__(
        self,
        base_url: str,
        *,
        batch_size: int = 200,
        flush_interval_s: float = 0.1,
        max_retries: int = 6,
        max_retry_after_s: float = 60.0,
        timeout_s: float = 15.0,
        api_key: str | None = None,
        autostart: bool = True,
        on_error: Callable[[Exception, list[dict[str, Any]]], None] | None = None,
        rng: Uniform | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, flush_interval_s=flush_interval_s, max_retries=max_retries,
                         max_retry_after_s=max_retry_after_s, on_error=on_error, rng=rng)
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, headers=headers,
                                       transport=transport)
        self._autostart = autostart
        self._send_lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self._closing = False

    def emit(self, user_id: str, track_id: str, type: str, *, ts: int | None = None,
             event_id: str | None = None, **fields: Any) -> str:
        event_id, full = self._queue(user_id, track_id, type, ts, event_id, fields)
        if full:
            self._full.set()  # the background task sends at once instead of at its next tick
        return event_id

    def start(self) -> None:
        """Start the background flusher (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="encore-client")

    async def flush(self) -> None:
        """Send everything queued now (until acknowledged or given up)."""
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            while batch := self._next_batch():
                await self._send(batch)

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            result: httpx.Response | Exception
            try:
                result = await self._http.post("/v1/events", json=batch)
            except httpx.HTTPError as exc:
                result = exc
            wait = self._decide(batch, result, attempt, started)
            if wait is None:
                return
            await asyncio.sleep(wait)
            attempt += 1

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._flush_interval_s)
            self._full.clear()
            try:
                await self.flush()
            except Exception as exc:  # never let the flusher die: report and go on
                log.warning("flushing events failed: %s", exc)

    async def aclose(self) -> None:
        """Send what is queued, then stop (a batch being sent is finished, not cut off)."""
        self._closing = True
        if self._task is not None:
            self._full.set()
            await self._task
            self._task = None
        await self.flush()
        await self._http.aclose()

    async def __aenter__(self) -> AsyncEncoreClient:
        if self._autostart:
            self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
