"""Helpers the routers share: Redis calls as 503s, the listener's state, the catalog view, track rows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from fastapi import Response
from redis.exceptions import RedisError

from ranking.catalog_view import CatalogView
from ranking.pipeline import RankedTrack
from serving.catalog import LiveCatalog
from serving.config import ServingConfig
from serving.errors import ApiError
from serving.models import RecommendedTrack
from serving.recommender import ListenerState, ProfileUnreadable, read_listener

T = TypeVar("T")


def iso(ms: int) -> str | None:
    if ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def redis_call(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except RedisError as exc:
        raise ApiError(503, "redis_unavailable", f"Redis is unavailable: {exc}") from None


def catalog_view(catalog: LiveCatalog) -> CatalogView:
    view = catalog.view
    if len(view) == 0:
        raise ApiError(503, "catalog_empty",
                       "the catalog is empty: load tracks first (encore catalog load FILE.csv)")
    return view


async def listener(client: aioredis.Redis, cfg: ServingConfig, user_id: str) -> ListenerState:
    try:
        return await redis_call(lambda: read_listener(client, cfg.keys, user_id))
    except ProfileUnreadable as exc:
        raise ApiError(500, "profile_unreadable", f"stored profile cannot be read: {exc}") from None


def track_out(view: CatalogView, item: RankedTrack) -> RecommendedTrack:
    track = view.index.tracks[item.position]
    return RecommendedTrack(track_id=track.track_id, score=item.score, title=track.title,
                            artist=track.artist, genres=track.genres, reasons=item.reasons,
                            sources=item.sources, engagement=item.engagement, explore=item.explore)


def track_json(view: CatalogView, item: RankedTrack) -> dict[str, Any]:
    """`track_out`'s fields as a JSON object (`RecommendedTrack`, field by field, in its order),
    without the model: every value already has its field's type (the pipeline's floats, lists of
    strings, the catalog's validated tracks)."""
    track = view.index.tracks[item.position]
    return {"track_id": track.track_id, "score": item.score, "title": track.title, "artist": track.artist,
            "genres": track.genres, "reasons": item.reasons, "sources": item.sources,
            "engagement": item.engagement, "explore": item.explore}


def json_answer(content: dict[str, Any]) -> Response:
    """A ranked answer's fields (its route's `response_model`, field by field) sent as JSON, without
    building and re-validating the model: for 10–50 tracks that was several % of a request's CPU.
    The route still documents the model; tests/unit/test_answer_json.py pins the two to each other."""
    return Response(orjson.dumps(content), media_type="application/json")
