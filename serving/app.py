"""The Encore API: events in, live recommendations and profiles out.

Every read goes to Redis for the user's profile (one GET), so an event the flow has applied shows
in the very next response; `profile_version` and `as_of` let a caller check which events it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from redis.exceptions import RedisError

from online_models.diversity import DIVERSITY_DEFAULT
from online_models.moods import ACTIVITIES, MOODS, known_name
from online_models.recommend import (
    CatalogView,
    ExclusionRules,
    RankedTrack,
    RecommendRequest,
    SeedFavourites,
    seed_of,
    similar_to,
)
from online_models.scoring import describe_taste
from online_models.taste_analysis import analyse_taste
from schemas.events import Event, InvalidEvent, event_time_problem, validate_event
from schemas.keys import NEIGHBOURS_KEPT
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, Track
from serving.auth import Authenticator, require
from serving.catalog import LiveCatalog
from serving.config import ServingConfig
from serving.errors import ERROR_RESPONSES, ApiError, install_error_handlers
from serving.limits import BodySizeLimit
from serving.models import (
    Accepted,
    Affinity,
    Health,
    Profile,
    RankRequest,
    RankResponse,
    RecentTrackOut,
    Recommendations,
    RecommendedTrack,
    SeedRequest,
    SeedResponse,
    SimilarTracks,
    TasteAnalysis,
)
from serving.ops import install_ops, open_ops
from serving.producer import AckedProducer, BrokerUnavailable
from serving.recommender import (
    GlobalModelCache,
    ListenerState,
    ProfileUnreadable,
    Recommender,
    ResponseCache,
    encode_seed,
    read_listener,
)
from serving.redis_client import connect_async
from serving.request_log import install_request_log

T = TypeVar("T")

log = logging.getLogger(__name__)

_MOOD_HELP = ("energetic, chill, happy, melancholic, party, focused, romantic or workout "
              "(aliases: gym, sad, ...).")
_ACTIVITY_HELP = "running, studying, commuting, sleeping, cooking, working_out or relaxing."
_HOUR_HELP = "The listener's local hour (0-23): nudges toward the time of day (morning, evening, ...)."
_DIVERSITY_HELP = ("0: pure relevance; 1: spread across the listener's taste clusters. "
                   "At most 2 per artist.")
_DISCOVERY_HELP = "0: no change; 1: strongly favour less popular tracks close to the taste."

UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _iso(ms: int) -> str | None:
    if ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def get_redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis


def get_producer(request: Request) -> AckedProducer:
    return request.app.state.producer


def get_catalog(request: Request) -> LiveCatalog:
    return request.app.state.catalog


def get_config(request: Request) -> ServingConfig:
    return request.app.state.config


async def _redis(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except RedisError as exc:
        raise ApiError(503, "redis_unavailable", f"Redis is unavailable: {exc}") from None


async def _json_array_body(request: Request, max_items: int) -> list[Any]:
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ApiError(422, "empty_batch", "send one object or a non-empty array of them")
    if len(items) > max_items:
        raise ApiError(413, "batch_too_large", f"at most {max_items} items per request, got {len(items)}")
    return items


def _body_schema(ref: str) -> dict[str, Any]:
    item = {"$ref": f"#/components/schemas/{ref}"}
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"oneOf": [item, {"type": "array", "items": item}]}}}}}


def create_app(config: ServingConfig) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.config = config
        app.state.redis = connect_async(config.redis_url, socket_timeout=5, socket_connect_timeout=2)
        app.state.producer = AckedProducer(config.brokers, config.produce_timeout_s, config.kafka_config)
        app.state.catalog = LiveCatalog(app.state.redis, config.keys)
        app.state.recommender = Recommender(
            config.keys, ResponseCache(config.recs_cache_size, config.recs_cache_ttl_s), GlobalModelCache())
        with contextlib.suppress(RedisError, OSError):
            await app.state.catalog.refresh()
        refresher = asyncio.create_task(app.state.catalog.keep_fresh(config.catalog_refresh_s))
        ops = open_ops(app, config)
        try:
            yield
        finally:
            refresher.cancel()
            ops.close()
            app.state.producer.close()
            await app.state.redis.aclose()

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
    install_request_log(app, config)  # request ids, access log, tracing: outermost, so last

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.post("/v1/events", status_code=202, response_model=Accepted, tags=["ingest"],
              responses={**ERROR_RESPONSES, 400: ERROR_RESPONSES[422], 413: ERROR_RESPONSES[422]},
              openapi_extra=_body_schema("Event"), dependencies=[Depends(require("write"))])
    async def post_events(
        request: Request,
        producer: Annotated[AckedProducer, Depends(get_producer)],
        cfg: Annotated[ServingConfig, Depends(get_config)],
    ) -> Accepted:
        """Accept one event or an array of them; answers once the broker acknowledged every one.

        All or nothing: if any event is invalid, none is sent, and the error names each bad event
        (by index) and field.
        """
        items = await _json_array_body(request, cfg.max_batch)
        events, details = [], []
        received_ms = int(time.time() * 1000)
        for index, item in enumerate(items):
            try:
                event = validate_event(item)
            except InvalidEvent as exc:
                details.extend({"index": index, **error} for error in exc.errors)
                continue
            problem = event_time_problem(event.ts, received_ms)
            if problem is not None:
                details.append({"index": index, "field": "ts", "message": problem})
            events.append(event)
        if details:
            bad = len({d["index"] for d in details})
            raise ApiError(422, "invalid_events", f"{bad} of {len(items)} events are invalid", details)
        try:
            await producer.send(cfg.topics.events, [(e.user_id.encode(), e.to_json()) for e in events])
        except BrokerUnavailable as exc:
            raise ApiError(503, "broker_unavailable", f"events were not accepted: {exc}") from None
        return Accepted(accepted=len(events), topic=cfg.topics.events, ids=[e.event_id for e in events])

    @app.post("/v1/tracks", status_code=202, response_model=Accepted, tags=["ingest"],
              responses={**ERROR_RESPONSES, 400: ERROR_RESPONSES[422], 413: ERROR_RESPONSES[422]},
              openapi_extra=_body_schema("Track"), dependencies=[Depends(require("admin"))])
    async def post_tracks(
        request: Request,
        producer: Annotated[AckedProducer, Depends(get_producer)],
        cfg: Annotated[ServingConfig, Depends(get_config)],
    ) -> Accepted:
        """Upsert catalog tracks (one object or an array); same path into Kafka as events."""
        items = await _json_array_body(request, cfg.max_batch)
        tracks, details = [], []
        for index, item in enumerate(items):
            try:
                tracks.append(Track.model_validate(item))
            except ValueError as exc:
                errors = getattr(exc, "errors", None)
                for e in errors(include_url=False) if callable(errors) else [{"loc": (), "msg": str(exc)}]:
                    details.append({"index": index, "field": ".".join(str(p) for p in e["loc"]),
                                    "message": e["msg"].removeprefix("Value error, ")})
        if details:
            bad = len({d["index"] for d in details})
            raise ApiError(422, "invalid_tracks", f"{bad} of {len(items)} tracks are invalid", details)
        try:
            await producer.send(cfg.topics.tracks, [(t.track_id.encode(), t.to_json()) for t in tracks])
        except BrokerUnavailable as exc:
            raise ApiError(503, "broker_unavailable", f"tracks were not accepted: {exc}") from None
        return Accepted(accepted=len(tracks), topic=cfg.topics.tracks, ids=[t.track_id for t in tracks])

    def recommend_request(
        k: int, mood: str | None, activity: str | None, hour: int | None, diversity: float,
        discovery: float, exclude: list[str], cfg: ServingConfig,
    ) -> RecommendRequest:
        details = []
        for field, value in (("mood", mood), ("activity", activity)):
            if value is not None and known_name(value) is None:
                details.append({"field": field, "message": f"unknown {field} {value!r}; known: "
                                + ", ".join(sorted({*MOODS, *ACTIVITIES}))})
        if details:
            raise ApiError(422, "invalid_parameters", "unknown mood or activity", details)
        now_ms = int(time.time() * 1000)
        return RecommendRequest(
            k=k, now_ms=now_ms, mood=mood, activity=activity, hour=hour, clock_hour=now_ms // 3_600_000 % 24,
            diversity=diversity, discovery=discovery, exclude=frozenset(exclude),
            rules=ExclusionRules(recent_events=cfg.exclude_recent),
        )

    def catalog_view(catalog: LiveCatalog) -> CatalogView:
        view = catalog.view
        if len(view) == 0:
            raise ApiError(503, "catalog_empty",
                           "the catalog is empty: load tracks first (encore catalog load FILE.csv)")
        return view

    async def listener(client: aioredis.Redis, cfg: ServingConfig, user_id: str) -> ListenerState:
        try:
            return await _redis(lambda: read_listener(client, cfg.keys, user_id))
        except ProfileUnreadable as exc:
            raise ApiError(500, "profile_unreadable", f"stored profile cannot be read: {exc}") from None

    def track_out(view: CatalogView, item: RankedTrack) -> RecommendedTrack:
        track = view.index.tracks[item.position]
        return RecommendedTrack(track_id=track.track_id, score=item.score, title=track.title,
                                artist=track.artist, genres=track.genres, reasons=item.reasons,
                                sources=item.sources, engagement=item.engagement)

    async def recommendations_for(
        user_id: str, client: aioredis.Redis, catalog: LiveCatalog, request: RecommendRequest,
    ) -> Recommendations:
        view = catalog_view(catalog)
        state = await listener(client, app.state.config, user_id)
        answer = await _redis(lambda: app.state.recommender.recommend(
            client, view, catalog.version, state, request))
        profile = state.profile
        return Recommendations(
            user_id=user_id,
            profile_version=profile.version if profile else 0,
            as_of=_iso(profile.as_of_ms) if profile else None,
            cold_start=answer.cold_start,
            seeded=answer.seeded,
            target=answer.target,
            items=[track_out(view, item) for item in answer.items],
        )

    @app.get("/v1/users/{user_id}/recommendations", response_model=Recommendations,
             tags=["recommend"], responses=ERROR_RESPONSES, dependencies=[Depends(require("read"))])
    async def recommendations(
        user_id: UserId,
        client: Annotated[aioredis.Redis, Depends(get_redis)],
        catalog: Annotated[LiveCatalog, Depends(get_catalog)],
        cfg: Annotated[ServingConfig, Depends(get_config)],
        k: Annotated[int, Query(ge=1, le=100, description="How many tracks.")] = 10,
        mood: Annotated[str | None, Query(max_length=64, description=_MOOD_HELP)] = None,
        activity: Annotated[str | None, Query(max_length=64, description=_ACTIVITY_HELP)] = None,
        hour: Annotated[int | None, Query(ge=0, le=23, description=_HOUR_HELP)] = None,
        diversity: Annotated[float, Query(ge=0, le=1, description=_DIVERSITY_HELP)] = DIVERSITY_DEFAULT,
        discovery: Annotated[float, Query(ge=0, le=1, description=_DISCOVERY_HELP)] = 0.0,
        exclude: Annotated[list[str], Query(max_length=500, description="Track ids not to return.")] = [],  # noqa: B006
    ) -> Recommendations:
        """The best k catalog tracks for this listener right now, each with reasons.

        Candidates come from the listener's taste (per taste cluster), tracks co-listened with their
        recent likes, trending tracks (overall and in their genres), popular tracks and declared
        favourites; each is scored by taste, genre and artist affinity, the listener's engagement
        model, live item quality, popularity, mood / time-of-day fit and discovery; the list is
        diversified across the listener's taste clusters with at most two tracks per artist.
        Recently played, skipped and disliked tracks and disliked artists are left out. A listener
        nobody knows gets popular and trending tracks across genres, marked `cold_start`.
        """
        request = recommend_request(k, mood, activity, hour, diversity, discovery, exclude, cfg)
        return await recommendations_for(user_id, client, catalog, request)

    @app.post("/v1/users/{user_id}/rank", response_model=RankResponse, tags=["recommend"],
              responses=ERROR_RESPONSES, dependencies=[Depends(require("read"))])
    async def rank_tracks(
        user_id: UserId,
        body: RankRequest,
        client: Annotated[aioredis.Redis, Depends(get_redis)],
        catalog: Annotated[LiveCatalog, Depends(get_catalog)],
        cfg: Annotated[ServingConfig, Depends(get_config)],
    ) -> RankResponse:
        """Re-rank the caller's tracks for this listener: scores and reasons, best first.

        Nothing is generated or filtered: every known track comes back (duplicates once), ordered by
        the same score as recommendations (diversified only if `diversity` > 0). Ids the catalog does
        not know are listed in `unknown`.
        """
        view = catalog_view(catalog)
        request = recommend_request(len(body.track_ids), body.mood, body.activity, body.hour,
                                    body.diversity, body.discovery, [], cfg)
        state = await listener(client, cfg, user_id)
        items, unknown = await _redis(lambda: app.state.recommender.rank(
            client, view, state, body.track_ids, request))
        profile = state.profile
        return RankResponse(
            user_id=user_id, profile_version=profile.version if profile else 0,
            as_of=_iso(profile.as_of_ms) if profile else None,
            target=request.target.name if request.target is not None else None,
            items=[track_out(view, item) for item in items], unknown=unknown,
        )

    @app.get("/v1/tracks/{track_id}/similar", response_model=SimilarTracks, tags=["recommend"],
             responses={**ERROR_RESPONSES, 404: ERROR_RESPONSES[422]},
             dependencies=[Depends(require("read"))])
    async def similar(
        track_id: Annotated[str, Path(min_length=1, max_length=256)],
        client: Annotated[aioredis.Redis, Depends(get_redis)],
        catalog: Annotated[LiveCatalog, Depends(get_catalog)],
        cfg: Annotated[ServingConfig, Depends(get_config)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        mood: Annotated[str | None, Query(max_length=64, description=_MOOD_HELP)] = None,
        activity: Annotated[str | None, Query(max_length=64, description=_ACTIVITY_HELP)] = None,
        diversity: Annotated[float, Query(ge=0, le=1, description=_DIVERSITY_HELP)] = DIVERSITY_DEFAULT,
        exclude: Annotated[list[str], Query(max_length=500)] = [],  # noqa: B006
    ) -> SimilarTracks:
        """Tracks like this one: audio neighbours and what listeners play with it, artist-capped."""
        view = catalog_view(catalog)
        position = view.index.position.get(track_id)
        if position is None:
            raise ApiError(404, "unknown_track", f"the catalog has no track {track_id!r}")
        request = recommend_request(k, mood, activity, None, diversity, 0.0, exclude, cfg)
        row = await _redis(lambda: client.zrevrange(cfg.keys.track_neighbours(track_id), 0,
                                                    NEIGHBOURS_KEPT - 1, withscores=True))
        neighbours = [(member.decode(), float(value)) for member, value in row]
        track = view.index.tracks[position]
        items = similar_to(view, position, neighbours, request)
        return SimilarTracks(track_id=track_id, title=track.title, artist=track.artist,
                             items=[track_out(view, item) for item in items])

    @app.post("/v1/users/{user_id}/seed", response_model=SeedResponse, tags=["recommend"],
              responses=ERROR_RESPONSES, dependencies=[Depends(require("write"))])
    async def seed(
        user_id: UserId,
        body: SeedRequest,
        client: Annotated[aioredis.Redis, Depends(get_redis)],
        catalog: Annotated[LiveCatalog, Depends(get_catalog)],
        cfg: Annotated[ServingConfig, Depends(get_config)],
    ) -> SeedResponse:
        """Declare a listener's favourites (a few tracks and/or artists) for a cold start.

        Stored next to the profile; their recommendations use it at once, fully while the listener
        is new and fading out over their first 20 events. Unknown tracks and artists are reported;
        if none is known, nothing is stored (422). Seeding again replaces the favourites.
        """
        view = catalog_view(catalog)
        if not body.track_ids and not body.artists:
            raise ApiError(422, "empty_seed", "give at least one track id or artist")
        favourites = SeedFavourites(tuple(dict.fromkeys(body.track_ids)), tuple(dict.fromkeys(body.artists)))
        resolved = seed_of(view, favourites)
        known_tracks = [t for t in favourites.track_ids if t in view.index.position]
        known_artists = [a for a in favourites.artists if a not in resolved.unknown_artists]
        if not known_tracks and not known_artists:
            raise ApiError(422, "nothing_known", "none of the seed tracks or artists is in the catalog",
                           [{"field": "track_ids", "message": f"unknown: {resolved.unknown_tracks}"},
                            {"field": "artists", "message": f"unknown: {resolved.unknown_artists}"}])
        stored = SeedFavourites(tuple(known_tracks), tuple(known_artists))
        await _redis(lambda: client.set(cfg.keys.user_seed(user_id),
                                        encode_seed(stored, int(time.time() * 1000))))
        request = recommend_request(10, None, None, None, DIVERSITY_DEFAULT, 0.0, [], cfg)
        recs = await recommendations_for(user_id, client, catalog, request)
        return SeedResponse(user_id=user_id, track_ids=known_tracks, artists=known_artists,
                            unknown_tracks=resolved.unknown_tracks, unknown_artists=resolved.unknown_artists,
                            recommendations=recs)

    @app.get("/v1/users/{user_id}/profile", response_model=Profile, tags=["recommend"],
             responses={**ERROR_RESPONSES, 404: ERROR_RESPONSES[422]},
             dependencies=[Depends(require("read"))])
    async def profile(
        user_id: UserId,
        client: Annotated[aioredis.Redis, Depends(get_redis)],
        catalog: Annotated[LiveCatalog, Depends(get_catalog)],
        cfg: Annotated[ServingConfig, Depends(get_config)],
    ) -> Profile:
        """The live profile in readable form."""
        live = (await listener(client, cfg, user_id)).profile
        if live is None:
            raise ApiError(404, "unknown_user", f"no profile for user {user_id!r}: no event applied yet")
        audio = None
        if live.taste:
            audio = {}
            for name, value in zip(AUDIO_FEATURES, live.taste, strict=True):
                low, high = FEATURE_RANGES[name]
                audio[name] = round(low + value * (high - low), 4)
        summary = []
        if live.taste and len(catalog.index):
            summary = describe_taste(catalog.index, live.taste, limit=3)

        def top(scores: dict[str, float], sign: int) -> list[Affinity]:
            ranked = sorted((kv for kv in scores.items() if kv[1] * sign > 0), key=lambda kv: -kv[1] * sign)
            return [Affinity(name=name, score=round(score, 4)) for name, score in ranked[:10]]

        return Profile(
            user_id=user_id,
            profile_version=live.version,
            as_of=_iso(live.as_of_ms),
            events_applied=live.version,
            counts={str(t): n for t, n in live.counts.items()},
            skip_rate=round(live.skip_rate, 4),
            top_genres=top(live.genres, +1),
            top_artists=top(live.artists, +1),
            avoided_genres=top(live.genres, -1),
            avoided_artists=top(live.artists, -1),
            audio_profile=audio,
            taste_summary=summary,
            recent_tracks=[
                RecentTrackOut(track_id=r.track_id, type=str(r.type)) for r in reversed(live.recent)
            ],
            taste_analysis=TasteAnalysis(**analyse_taste(catalog.view, live)) if len(catalog.view) else None,
        )

    _document_body_models(app)
    return app


def install_security(app: FastAPI, config: ServingConfig) -> None:
    """API keys, the body-size cap and CORS; in demo mode (no keys) say so on every response."""
    app.state.auth = Authenticator(config.api_keys)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=config.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "X-API-Key",
                                                                          "Content-Type"])
    if app.state.auth.demo_mode:
        log.warning("DEMO MODE: no API keys configured (ENCORE_API_KEYS); anyone who can reach "
                    "this API can write events and read every profile")

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
