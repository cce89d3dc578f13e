"""The Encore API: events in, live recommendations and profiles out.

Every read goes to Redis for the user's profile (one GET), so an event the flow has applied shows
in the very next response; `profile_version` and `as_of` let a caller check which events it saw.

`create_app` opens what the routes share (Redis, the producer, the live catalog, the recommender:
`serving.deps` hands them to the routes), installs the middleware and the JSON error handlers,
and includes one router per resource (`serving/routers/`, and `serving/ops.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError

from schemas.events import Event
from schemas.tracks import Track
from serving.auth import Authenticator
from serving.catalog import LiveCatalog
from serving.config import ServingConfig
from serving.errors import install_error_handlers
from serving.experiments import served_counter
from serving.heap import keep_settled
from serving.item_stats import LiveItemStats
from serving.limits import BodySizeLimit
from serving.metrics import CatalogMetrics, forget_this_process
from serving.ops import install_ops, open_ops
from serving.producer import AckedProducer
from serving.recommender import GlobalModelCache, Recommender, ResponseCache
from serving.redis_client import connect_async
from serving.request_log import install_request_log
from serving.routers import experiments, ingest, listen, profile, recommend, search, users
from serving.search_index import LiveSearchIndex

log = logging.getLogger(__name__)


def create_app(config: ServingConfig) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.config = config
        app.state.redis = connect_async(config.redis_url, socket_timeout=5, socket_connect_timeout=2)
        app.state.producer = AckedProducer(config.brokers, config.produce_timeout_s, config.kafka_config)
        app.state.catalog = LiveCatalog(app.state.redis, config.keys,
                                        on_update=app.state.catalog_metrics.observe)
        app.state.item_stats = LiveItemStats(app.state.redis, config.keys, app.state.catalog,
                                             config.item_stats_refresh_s)
        app.state.recommender = Recommender(
            config.keys, ResponseCache(config.recs_cache_size, config.recs_cache_ttl_s), GlobalModelCache(),
            app.state.item_stats)
        with contextlib.suppress(RedisError, OSError):
            await app.state.catalog.refresh()
        app.state.search_index = LiveSearchIndex(app.state.catalog, config.search_embeddings)
        ops = open_ops(app, config)
        tasks = [
            asyncio.create_task(app.state.catalog.keep_fresh(config.catalog_refresh_s)),
            asyncio.create_task(app.state.search_index.keep_fresh(config.catalog_refresh_s)),
            asyncio.create_task(app.state.item_stats.keep_fresh()),
            asyncio.create_task(keep_settled(
                lambda: (app.state.catalog.view, app.state.search_index.index), config.catalog_refresh_s)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            ops.close()
            app.state.producer.close()
            await app.state.redis.aclose()
            forget_this_process()

    app = FastAPI(
        title="Encore",
        version="0.1.0",
        description="Real-time feedback engine for music recommendation: every play, skip and "
        "like updates the listener's profile at once, and the next read shows it.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_security(app, config)
    install_ops(app)
    app.state.experiment_answers = served_counter(app.state.process_registry)
    app.state.catalog_metrics = CatalogMetrics(app.state.process_registry)
    install_request_log(app, config)  # request ids, access log, tracing: outermost, so last

    for router in (ingest.router, recommend.router, profile.router, users.router, search.router,
                   listen.router, experiments.router):
        app.include_router(router)
    app.mount("/listen/static", StaticFiles(directory=listen.STATIC_DIR), name="listen-static")
    _document_body_models(app)
    return app


def install_security(app: FastAPI, config: ServingConfig) -> None:
    """API keys, the body-size cap and CORS; in demo mode (no keys) say so on every response."""
    app.state.auth = Authenticator(config.api_keys, config.tokens, config.listener_rate_per_s)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    if app.state.auth.demo_mode:
        log.warning("DEMO MODE: no API keys (ENCORE_API_KEYS) and no listener tokens (ENCORE_JWT_*) "
                    "configured; anyone who can reach this API can write events, read and forget "
                    "every profile")

        app.add_middleware(DemoModeHeader)


class DemoModeHeader:
    """Adds `X-Encore-Auth: demo-mode…` to every response (plain ASGI: no extra task per request,
    unlike `BaseHTTPMiddleware`)."""

    HEADER = (b"x-encore-auth", b"demo-mode: no API keys configured")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.HEADER]
            await send(message)

        await self.app(scope, receive, send_with_header)


def _document_body_models(app: FastAPI) -> None:
    """Add the Event and Track schemas, which the ingest bodies refer to, to the OpenAPI spec."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in (Event, Track):
                generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(generated.pop("$defs", {}))
                schemas[model.__name__] = generated
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
