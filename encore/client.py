"""A small client for player apps: batching, retries, and event ids made for the caller.

Events are buffered and sent to `POST /v1/events` in batches (by size or age). A batch that fails
with a network error or a 5xx is retried with backoff; since each event carries its own
`event_id`, a retried batch is applied once (the flow drops duplicates).

>>> client = EncoreClient("http://127.0.0.1:8000", autostart=False)
>>> event_id = client.like("alice", "track-1")
>>> _ = client.complete("alice", "track-2", request_id="9f2c~ranker=b", context={"device": "phone"})
>>> len(client.pending()), client.pending()[1]["context"]
(2, {'device': 'phone', 'request_id': '9f2c~ranker=b'})
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger(__name__)


class EventRejected(Exception):
    """The API refused a batch as invalid (4xx): retrying will not help."""

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


def new_event_id() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return int(time.time() * 1000)


class EncoreClient:
    def __init__(
        self,
        base_url: str,
        *,
        batch_size: int = 200,
        flush_interval_s: float = 0.1,
        max_retries: int = 6,
        timeout_s: float = 15.0,
        api_key: str | None = None,
        autostart: bool = True,
        on_error: Callable[[Exception, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, headers=headers)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_retries = max(0, max_retries)
        self._on_error = on_error
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self.stats = ClientStats()
        self._thread: threading.Thread | None = None
        if autostart:
            self._thread = threading.Thread(target=self._run, name="encore-client", daemon=True)
            self._thread.start()

    # -- emitting ---------------------------------------------------------------------------
    def emit(self, user_id: str, track_id: str, type: str, *, ts: int | None = None,
             event_id: str | None = None, request_id: str | None = None, **fields: Any) -> str:
        """Queue one event; returns its event_id. Extra fields: position_ms, duration_ms,
        session_id, context.

        `request_id`: the `request_id` of the recommendation (or search) answer the track was played
        from; it goes into `context.request_id`, so the outcome counts for that answer's experiment
        variant. Pass it with every event of a recommended track (play, complete, skip, like...)."""
        if request_id is not None:
            fields["context"] = {**(fields.get("context") or {}), "request_id": request_id}
        event = {"event_id": event_id or new_event_id(), "user_id": user_id, "track_id": track_id,
                 "type": type, "ts": ts if ts is not None else now_ms(), **fields}
        with self._lock:
            self._buffer.append(event)
            full = len(self._buffer) >= self._batch_size
        if full and self._thread is None:
            self.flush()
        return event["event_id"]

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

    # -- sending ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Send everything queued now (blocking until acknowledged or given up)."""
        with self._send_lock:
            while True:
                with self._lock:
                    batch, self._buffer = self._buffer[: self._batch_size], self._buffer[self._batch_size:]
                if not batch:
                    return
                self._send(batch)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        delay = 0.1
        for attempt in range(self._max_retries + 1):
            started = time.perf_counter()
            try:
                response = self._http.post("/v1/events", json=batch)
            except httpx.HTTPError as exc:
                error: Exception = exc
            else:
                if 200 <= response.status_code < 300:
                    self.stats.sent += len(batch)
                    self.stats.batches += 1
                    self.stats.latencies_ms.append((time.perf_counter() - started) * 1000)
                    return
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    self.stats.rejected += len(batch)
                    try:
                        body: Any = response.json()
                    except ValueError:  # e.g. a proxy's HTML error page
                        body = response.text
                    rejected = EventRejected(response.status_code, body)
                    self._report(rejected, batch)
                    return
                error = EventRejected(response.status_code, response.text)
            if attempt < self._max_retries:
                self.stats.retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.stats.failed += len(batch)
        self._report(error, batch)

    def _report(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        if self._on_error is not None:
            self._on_error(error, batch)
        else:
            log.warning("dropping %d events: %s", len(batch), error)

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
