"""Operators' endpoints: lag, readiness, a summary, Prometheus metrics and the /ops dashboard.

| route | key | what |
|---|---|---|
| `GET /v1/ops/lag` | admin | lag per partition and per topic, in messages and seconds (`serving/lag.py`) |
| `GET /v1/ops/summary` | admin | throughput, freshness, dead letters by reason, health: what /ops shows |
| `GET /metrics` | admin | Prometheus text format (`serving/metrics.py`) |
| `GET /healthz` | none | 200 while the process is up |
| `GET /readyz` | none | 200 when Redis, Kafka, catalog and flow heartbeat are fine; else 503 and why |
| `GET /ops` | none | the dashboard: a static shell (`serving/static/`) holding no data; it asks for a key |

`install_ops` wires the routes and the request timer into the app when it is built;
`open_ops` opens what they read (a blocking Redis client and a Kafka reader, used from threads)
when the app starts, and its `close` releases them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from schemas.kafka_config import KafkaClientConfig
from serving.auth import require
from serving.config import ServingConfig
from serving.errors import ApiError, JsonResponse
from serving.lag import KafkaLogReader, LagMonitor, LagReport, LagUnavailable
from serving.metrics import ExperimentCollector, OpsCollector, RequestTimer, registries, request_histogram
from serving.models import Health
from serving.ops_stats import FlowStats, StatsHistory, Window, read_stats_async
from serving.redis_client import SyncRedis
from serving.redis_client import connect as connect_redis

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
HEARTBEAT_STALE_S = 10.0
"""A flow whose last heartbeat is older than this is reported stalled (it beats every 2 s)."""
CHECK_TIMEOUT_S = 3.0

router = APIRouter(tags=["ops"])
ADMIN = [Depends(require("admin"))]


@dataclass
class OpsState:
    """What the ops endpoints read, opened with the app and closed with it."""

    config: ServingConfig
    client: SyncRedis
    reader: KafkaLogReader
    monitor: LagMonitor
    registry: CollectorRegistry
    collector: OpsCollector
    history: StatsHistory = field(default_factory=StatsHistory)
    experiments: ExperimentCollector | None = None

    def close(self) -> None:
        self.registry.unregister(self.collector)
        if self.experiments is not None:
            self.registry.unregister(self.experiments)
        self.reader.close()
        self.client.close()


def install_ops(app: FastAPI) -> None:
    """Add the ops routes, the /ops page's assets and the request timer to the app."""
    own, exposed = registries()
    app.state.ops_registry = exposed  # what /metrics exposes; the Redis-reading collectors join it
    app.state.process_registry = own  # this process's own metrics (the same one without workers)
    app.add_middleware(RequestTimer, histogram=request_histogram(own))
    app.include_router(router)
    app.mount("/ops/static", StaticFiles(directory=STATIC_DIR), name="ops-static")


def open_ops(app: FastAPI, config: ServingConfig) -> OpsState:
    """Open the ops readers (lazily connecting: a broker that is down now does not stop the API)."""
    client = connect_redis(config.redis_url, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=2)
    reader = KafkaLogReader(config.brokers,
                            client_options=KafkaClientConfig(config.kafka_config).kafka_python())
    topics = config.topics
    monitor = LagMonitor(reader, client, config.keys, topics.consumed, topics.consumer_group)
    registry: CollectorRegistry = app.state.ops_registry
    collector = OpsCollector(monitor, client, config.keys)  # catalog size: `CatalogMetrics`
    registry.register(collector)
    experiments = ExperimentCollector(client, config.keys, config.experiments)
    registry.register(experiments)
    state = OpsState(config, client, reader, monitor, registry, collector, experiments=experiments)
    app.state.ops = state
    return state


def _ops(request: Request) -> OpsState:
    return request.app.state.ops


async def _lag(state: OpsState) -> LagReport:
    return await asyncio.to_thread(state.monitor.report)


@router.get("/v1/ops/lag", response_class=JsonResponse, dependencies=ADMIN)
async def ops_lag(request: Request) -> JsonResponse:
    """The flow's lag per partition of `encore.events` and `encore.tracks`.

    `processed_offset` is the next offset the flow will process (processed + 1), as a Kafka commit
    holds it; `lag_messages` = `end_offset` − `processed_offset`; `lag_seconds` is how old the
    oldest unprocessed message is (0 when caught up). Per topic: the sum of messages, the max of
    seconds.
    """
    try:
        report = await _lag(_ops(request))
    except LagUnavailable as exc:
        raise ApiError(503, "lag_unavailable", str(exc)) from None
    return JsonResponse(report.to_dict())


def _check(ok: bool, error: str | None = None, **details: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"ok": ok, **details}
    if not ok:
        result["error"] = error
    return result


def _catalog_check(request: Request) -> dict[str, Any]:
    tracks = len(request.app.state.catalog.index)
    return _check(tracks > 0, "the catalog is empty: load tracks (encore catalog load FILE.csv)",
                  tracks=tracks)


def _heartbeat_check(heartbeat_ms: int | None, now_ms: float) -> dict[str, Any]:
    if heartbeat_ms is None:
        return _check(False, "no flow heartbeat recorded: is `encore flow` running for this namespace?",
                      age_s=None, threshold_s=HEARTBEAT_STALE_S)
    age = round(max(0.0, now_ms - heartbeat_ms) / 1000, 3)
    return _check(age <= HEARTBEAT_STALE_S,
                  f"the flow's last heartbeat was {age:.1f}s ago (threshold {HEARTBEAT_STALE_S:.0f}s): "
                  "the flow is stopped or stuck", age_s=age, threshold_s=HEARTBEAT_STALE_S)


async def _redis_checks(client: aioredis.Redis, state: OpsState) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await client.ping()
            raw = await client.get(state.config.keys.ops_heartbeat)
    except (redis.RedisError, OSError, TimeoutError) as exc:
        log.warning("readiness: Redis is unreachable: %s", exc or "timed out")
        failed = _check(False, "Redis is unreachable (details in the API's log)")
        return failed, _check(False, "unknown: Redis is unreachable", age_s=None,
                              threshold_s=HEARTBEAT_STALE_S)
    heartbeat = int(raw) if raw is not None else None
    return _check(True), _heartbeat_check(heartbeat, time.time() * 1000)


async def _kafka_check(state: OpsState) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S + 1):
            await asyncio.to_thread(state.reader.ping)
    except LagUnavailable as exc:
        log.warning("readiness: %s", exc)
        return _check(False, "Kafka is unreachable (details in the API's log)")
    except TimeoutError:
        return _check(False, f"Kafka did not answer within {CHECK_TIMEOUT_S + 1:.0f}s")
    return _check(True)


@router.get("/readyz", response_class=JsonResponse,
            responses={503: {"description": "Not ready; `checks` names what is wrong."}})
async def readyz(request: Request) -> JsonResponse:
    """Ready when Redis and Kafka answer, the catalog is loaded and the flow's heartbeat is fresh.

    `{"ready": true|false, "checks": {"redis", "kafka", "catalog", "flow_heartbeat"}}`, each check
    `{"ok": ..., "error": "what is wrong"}`; 503 when any fails. Needs no key (probes call it), so
    errors name the failing part without internal details; those go to the log.
    """
    state = _ops(request)
    (redis_ok, heartbeat), kafka = await asyncio.gather(
        _redis_checks(request.app.state.redis, state), _kafka_check(state))
    checks = {"redis": redis_ok, "kafka": kafka, "catalog": _catalog_check(request),
              "flow_heartbeat": heartbeat}
    ready = all(c["ok"] for c in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _summary(state: OpsState, stats: FlowStats | None, window: Window | None, report: LagReport | None,
             errors: dict[str, str], catalog: dict[str, Any]) -> dict[str, Any]:
    now_ms = time.time() * 1000
    fresh = None
    if stats is not None:
        recent = window.freshness if window is not None and window.freshness.count else None
        source = recent or stats.freshness
        fresh = {
            "scope": "recent" if recent else "all_time",
            "samples": source.count,
            "p50_ms": source.quantile(0.5), "p90_ms": source.quantile(0.9), "p99_ms": source.quantile(0.99),
            "mean_ms": source.mean_ms,
        }
    health = {
        "redis": _check("redis" not in errors, errors.get("redis")),
        "kafka": _check("kafka" not in errors, errors.get("kafka")),
        "catalog": catalog,
        "flow_heartbeat": _heartbeat_check(stats.heartbeat_ms, now_ms) if stats is not None
        else _check(False, "unknown: Redis is unreachable"),
    }
    return {
        "as_of": _iso(now_ms),
        "namespace": state.config.namespace,
        "group": state.monitor.group,
        "ready": all(c["ok"] for c in health.values()),
        "health": health,
        "totals": None if stats is None else {
            "events_processed": stats.counters["events_applied"],
            "events_duplicate": stats.counters["events_duplicate"],
            "profile_writes": stats.counters["profile_writes"],
            "tracks_upserted": stats.counters["tracks_upserted"],
            "dead_letters": stats.dead_letters_total,
        },
        "rates": None if window is None else {
            "window_s": window.seconds,
            "events_per_s": window.rates["events_applied"],
            "profile_writes_per_s": window.rates["profile_writes"],
            "tracks_per_s": window.rates["tracks_upserted"],
            "dead_letters_per_s": window.dead_letters_per_s,
        },
        "freshness": fresh,
        "dead_letters": None if stats is None else dict(sorted(stats.dead_letters.items())),
        "lag": None if report is None else {
            "messages": report.lag_messages,
            "seconds": report.lag_seconds,
            "by_topic": {t.topic: {"messages": t.lag_messages, "seconds": t.lag_seconds,
                                   "rate_per_s": t.rate_per_s} for t in report.topics},
        },
    }


@router.get("/v1/ops/summary", response_class=JsonResponse, dependencies=ADMIN)
async def ops_summary(request: Request) -> JsonResponse:
    """What the /ops page shows: totals, rates over the last ~10 s (from counter deltas), recent
    event-to-profile freshness quantiles, dead letters by reason, total lag, and health."""
    state = _ops(request)
    errors: dict[str, str] = {}
    stats = window = report = None
    try:
        stats = await read_stats_async(request.app.state.redis, state.config.keys)
        window = state.history.add(stats)
    except (redis.RedisError, OSError) as exc:
        errors["redis"] = f"Redis is unreachable: {exc}"
    try:
        report = await _lag(state)
    except LagUnavailable as exc:
        errors["kafka"] = str(exc)
    return JsonResponse(_summary(state, stats, window, report, errors, _catalog_check(request)))


@router.get("/metrics", include_in_schema=False, dependencies=ADMIN)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of the flow's lag, counters and freshness, and request latency."""
    body = await asyncio.to_thread(generate_latest, request.app.state.ops_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/ops", include_in_schema=False)
async def ops_page() -> FileResponse:
    """The operators' dashboard (no CDN, no external fonts: it works offline). The page is a
    static shell; the data it polls needs an admin key, which the page asks for when needed."""
    return FileResponse(STATIC_DIR / "ops.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")
