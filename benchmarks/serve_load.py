"""Open-loop HTTP load generator for `benchmarks.serve_bench`: its own process, raw HTTP/1.1.

    python -m benchmarks.serve_load PLAN.json RESULT.json

Why its own client: on a shared two-core machine, httpx spends around a millisecond of CPU per
request, which at 500 requests/s is most of a core taken from the API it measures. This client
pre-builds every request's bytes before the clock starts and keeps a pool of keep-alive
connections on uvloop, so a request costs it a few tens of microseconds. Its own overhead is
measured, not assumed: `serve_bench` first runs the same schedule against `GET /healthz`.

Open loop, no coordinated omission: request i is due at `t0 + i / rate` whatever happened to the
ones before it, and its latency is measured from that due time to the last byte of its response. A
request that waits for a free connection, or behind a slow one, pays that wait in its latency.

The plan (JSON) names the host, port, headers and, per phase, a rate, a duration and a list of
requests (label, method, path, body) to cycle through; the result holds, per phase and label, the
latencies in ms of the answered requests and the count of each status (or `timeout`, `conn-error`,
`bad-body` for a 200 whose JSON lacks `items`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

REQUEST_TIMEOUT_S = 10.0
"""A request not answered this long after its due time counts as `timeout`."""


@dataclass
class Request:
    label: str
    raw: bytes  # the whole HTTP/1.1 request
    check_items: bool  # a 200 must carry a JSON object with an `items` list


@dataclass
class PhaseResult:
    name: str
    rate: float
    duration_s: float
    scheduled: int = 0
    sent_span_s: float = 0.0  # first due time -> last request actually written
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    send_lag_ms: list[float] = field(default_factory=list)  # due time -> written on a connection
    connections: int = 0
    cpu_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "rate": self.rate, "duration_s": self.duration_s,
                "scheduled": self.scheduled, "sent_span_s": self.sent_span_s,
                "latencies_ms": dict(self.latencies_ms),
                "statuses": {k: dict(v) for k, v in self.statuses.items()},
                "send_lag_ms": self.send_lag_ms, "connections": self.connections, "cpu_s": self.cpu_s}


def build_request(host: str, port: int, method: str, path: str, body: Any, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    payload = b""
    if body is not None:
        payload = orjson.dumps(body)
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = None
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            body = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
            return status, bytes(body)
        if length is None:
            raise ConnectionError("a response without Content-Length on a keep-alive connection")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Pool:
    """Keep-alive connections: an idle one first, else a new one while fewer than `limit` are open,
    else wait for one to come back. A discarded connection frees its slot by queueing a `None`."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: asyncio.Queue[Connection | None] = asyncio.Queue()
        self.opened = 0
        self.live = 0

    async def get(self) -> Connection:
        while True:
            if not self.idle.empty():
                conn = self.idle.get_nowait()
            elif self.live < self.limit:
                conn = None
            else:
                conn = await self.idle.get()  # cancellation-safe: nothing is lost if it times out
            if conn is not None:
                return conn
            if self.live < self.limit:
                self.live += 1
                try:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                except BaseException:
                    self.live -= 1
                    raise
                self.opened += 1
                return Connection(reader, writer)

    def put(self, conn: Connection) -> None:
        self.idle.put_nowait(conn)

    def discard(self, conn: Connection) -> None:
        conn.close()
        self.live -= 1
        self.idle.put_nowait(None)

    def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                conn.close()


async def _attempt(pool: Pool, request: Request, due: float, result: PhaseResult,
                   held: list[Connection]) -> tuple[int, bytes]:
    conn = await pool.get()
    held.append(conn)
    result.send_lag_ms.append((time.perf_counter() - due) * 1000.0)
    return await conn.exchange(request.raw)


async def _one(pool: Pool, request: Request, due: float, result: PhaseResult) -> None:
    """One request; waiting for a connection and the exchange share one deadline: due + timeout."""
    held: list[Connection] = []
    label = request.label
    try:
        remaining = REQUEST_TIMEOUT_S - (time.perf_counter() - due)
        status, body = await asyncio.wait_for(_attempt(pool, request, due, result, held),
                                              max(0.001, remaining))
        done = time.perf_counter()
    except TimeoutError:
        result.statuses[label]["timeout"] += 1
        if held:
            pool.discard(held[0])
        return
    except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        result.statuses[label]["conn-error"] += 1
        if held:
            pool.discard(held[0])
        return
    pool.put(held[0])
    code = str(status)
    if status == 200 and request.check_items:
        try:
            items = orjson.loads(body).get("items")
        except (orjson.JSONDecodeError, AttributeError):
            items = None
        if not isinstance(items, list) or not items:
            code = "bad-body"
    result.statuses[label][code] += 1
    if code == "200":
        result.latencies_ms[label].append((done - due) * 1000.0)


async def run_phase(host: str, port: int, name: str, rate: float, duration_s: float, requests: list[Request],
                    connections: int) -> PhaseResult:
    result = PhaseResult(name, rate, duration_s)
    pool = Pool(host, port, connections)
    count = int(rate * duration_s)
    result.scheduled = count
    tasks: dict[asyncio.Task[None], str] = {}  # in flight -> label
    cpu0 = time.process_time()
    # Warm a few connections before the clock starts: connecting is not what is measured.
    for conn in [await pool.get() for _ in range(min(connections, 8))]:
        pool.put(conn)
    t0 = time.perf_counter() + 0.05
    i = 0
    last_sent = t0
    while i < count:
        now = time.perf_counter()
        while i < count and t0 + i / rate <= now:
            request = requests[i % len(requests)]
            task = asyncio.create_task(_one(pool, request, t0 + i / rate, result))
            tasks[task] = request.label
            task.add_done_callback(lambda done: tasks.pop(done, None))
            i += 1
            last_sent = now
        if i < count:
            await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
    if tasks:  # every request ends by its deadline; the margin is for the event loop
        await asyncio.wait(list(tasks), timeout=REQUEST_TIMEOUT_S + 5)
    for task, label in list(tasks.items()):
        task.cancel()
        result.statuses[label]["unfinished"] += 1
    result.sent_span_s = last_sent - t0
    result.connections = pool.opened
    result.cpu_s = time.process_time() - cpu0
    pool.close()
    return result


def load_plan(plan: dict[str, Any]) -> list[tuple[dict[str, Any], list[Request]]]:
    host, port, headers = plan["host"], int(plan["port"]), dict(plan.get("headers", {}))
    phases = []
    for phase in plan["phases"]:
        requests = [Request(r["label"], build_request(host, port, r["method"], r["path"], r.get("body"),
                                                      headers), bool(r.get("check_items", False)))
                    for r in phase["requests"]]
        phases.append((phase, requests))
    return phases


async def run_plan(plan: dict[str, Any]) -> list[PhaseResult]:
    results = []
    for phase, requests in load_plan(plan):
        results.append(await run_phase(plan["host"], int(plan["port"]), phase["name"], float(phase["rate"]),
                                       float(phase["duration_s"]), requests,
                                       int(plan.get("connections", 64))))
        pause = float(plan.get("pause_s", 0.0))
        if pause:
            await asyncio.sleep(pause)
    return results


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmarks.serve_load PLAN.json RESULT.json", file=sys.stderr)
        return 2
    with open(args[0], "rb") as handle:
        plan = orjson.loads(handle.read())
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # plain asyncio works too, with more overhead per request
        runner = asyncio.run
    results = runner(run_plan(plan))
    tmp = args[1] + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(orjson.dumps({"pid": os.getpid(), "phases": [r.to_json() for r in results]}))
    os.replace(tmp, args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
