"""Recommend: recommendations, rank and similar tracks (`read` scope), and seeds (`write`). A
listener token may use the per-user routes for its own listener, and similar tracks."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Response

from ranking.pipeline import RecommendRequest
from ranking.seeds import SeedFavourites, seed_of
from ranking.similar import similar_to
from schemas.keys import NEIGHBOURS_KEPT
from schemas.values import encode_explore
from serving.auth import ListenerAccess, require
from serving.catalog import LiveCatalog
from serving.config import ServingConfig
from serving.deps import (
    CatalogDep,
    ConfigDep,
    RecommenderDep,
    RecommendParams,
    RecommendParamsDep,
    RedisDep,
    ServedDep,
    SimilarParamsDep,
    TrackId,
    UserId,
)
from serving.errors import ERROR_RESPONSES, ApiError
from serving.experiments import Assigned, assigned_for
from serving.models import (
    RankRequest,
    RankResponse,
    Recommendations,
    SeedRequest,
    SeedResponse,
    SimilarTracks,
)
from serving.recommender import Recommender, encode_seed
from serving.routers.shared import catalog_view, iso, json_answer, listener, redis_call, track_json, track_out

reads = APIRouter(prefix="/v1", tags=["recommend"],
                  dependencies=[Depends(require("read", ListenerAccess.OWN))], responses=ERROR_RESPONSES)
catalog_reads = APIRouter(prefix="/v1", tags=["recommend"],
                          dependencies=[Depends(require("read", ListenerAccess.ANY))],
                          responses=ERROR_RESPONSES)
"""Routes that hold no listener's data (similar tracks): any listener token may read them."""
writes = APIRouter(prefix="/v1", tags=["recommend"],
                   dependencies=[Depends(require("write", ListenerAccess.OWN))], responses=ERROR_RESPONSES)


async def recommendations_for(
    user_id: str, client: aioredis.Redis, catalog: LiveCatalog, cfg: ServingConfig,
    recommender: Recommender, request: RecommendRequest, assigned: Assigned,
) -> dict[str, Any]:
    """The fields of a `Recommendations` answer (`json_answer` sends them)."""
    view = catalog_view(catalog)
    state = await listener(client, cfg, user_id)
    answer = await redis_call(lambda: recommender.recommend(client, view, catalog.version, state, request))
    profile = state.profile
    return {
        "user_id": user_id,
        "profile_version": profile.version if profile else 0,
        "as_of": iso(profile.as_of_ms) if profile else None,
        "stats_as_of": iso(answer.stats_as_of_ms),
        "cold_start": answer.cold_start,
        "seeded": answer.seeded,
        "target": answer.target,
        "request_id": encode_explore(assigned.request_id, [(item.explore, item.track_id)
                                                           for item in answer.items if item.explore]),
        "variant": assigned.variant,
        "experiments": assigned.experiments,
        "items": [track_json(view, item) for item in answer.items],
    }


@reads.get("/users/{user_id}/recommendations", response_model=Recommendations)
async def recommendations(
    user_id: UserId, params: RecommendParamsDep, client: RedisDep, catalog: CatalogDep, cfg: ConfigDep,
    recommender: RecommenderDep, served: ServedDep,
) -> Response:
    """The best k catalog tracks for this listener right now, each with reasons.

    Candidates come from the listener's taste (per taste cluster), tracks co-listened with their
    recent likes, trending tracks (overall and in their genres), popular tracks and declared
    favourites; each is scored by taste, genre and artist affinity, the listener's engagement
    model, live item quality, popularity, mood / time-of-day fit and discovery; the list is
    diversified across the listener's taste clusters with at most two tracks per artist.
    Recently played, skipped and disliked tracks and disliked artists are left out. A listener
    nobody knows gets popular and trending tracks across genres, marked `cold_start`. With
    experiments configured, the listener's variant ranks the list; `request_id` names the answer
    (players send it back with the plays of its tracks) and `variant` the variant.
    """
    assigned = assigned_for(cfg, user_id, served)
    request = params.request(cfg, config=assigned.config)
    fields = await recommendations_for(user_id, client, catalog, cfg, recommender, request, assigned)
    return json_answer(fields)


@reads.post("/users/{user_id}/rank", response_model=RankResponse)
async def rank_tracks(
    user_id: UserId, body: RankRequest, client: RedisDep, catalog: CatalogDep, cfg: ConfigDep,
    recommender: RecommenderDep, served: ServedDep,
) -> Response:
    """Re-rank the caller's tracks for this listener: scores and reasons, best first.

    Nothing is generated or filtered: every known track comes back (duplicates once), ordered by
    the same score as recommendations (diversified only if `diversity` > 0). Ids the catalog does
    not know are listed in `unknown`.
    """
    view = catalog_view(catalog)
    assigned = assigned_for(cfg, user_id, served)
    request = RecommendParams.from_body(body, k=len(body.track_ids)).request(cfg, config=assigned.config)
    state = await listener(client, cfg, user_id)
    items, unknown, stats_as_of_ms = await redis_call(
        lambda: recommender.rank(client, view, state, body.track_ids, request))
    profile = state.profile
    return json_answer({
        "user_id": user_id, "profile_version": profile.version if profile else 0,
        "as_of": iso(profile.as_of_ms) if profile else None, "stats_as_of": iso(stats_as_of_ms),
        "target": request.target.name if request.target is not None else None,
        "request_id": assigned.request_id, "variant": assigned.variant, "experiments": assigned.experiments,
        "items": [track_json(view, item) for item in items], "unknown": unknown,
    })


@catalog_reads.get("/tracks/{track_id}/similar", response_model=SimilarTracks,
           responses={404: ERROR_RESPONSES[422]})
async def similar(
    track_id: TrackId, params: SimilarParamsDep, client: RedisDep, catalog: CatalogDep, cfg: ConfigDep,
) -> SimilarTracks:
    """Tracks like this one: audio neighbours and what listeners play with it, artist-capped."""
    view = catalog_view(catalog)
    position = view.index.position.get(track_id)
    if position is None:
        raise ApiError(404, "unknown_track", f"the catalog has no track {track_id!r}")
    request = params.request(cfg)
    row = await redis_call(lambda: client.zrevrange(cfg.keys.track_neighbours(track_id), 0,
                                                    NEIGHBOURS_KEPT - 1, withscores=True))
    neighbours = [(member.decode(), float(value)) for member, value in row]
    track = view.index.tracks[position]
    items = similar_to(view, position, neighbours, request)
    return SimilarTracks(track_id=track_id, title=track.title, artist=track.artist,
                         items=[track_out(view, item) for item in items])


@writes.post("/users/{user_id}/seed", response_model=SeedResponse)
async def seed(
    user_id: UserId, body: SeedRequest, client: RedisDep, catalog: CatalogDep, cfg: ConfigDep,
    recommender: RecommenderDep, served: ServedDep,
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
    await redis_call(lambda: client.set(cfg.keys.user_seed(user_id),
                                        encode_seed(stored, int(time.time() * 1000))))
    assigned = assigned_for(cfg, user_id, served)
    request = RecommendParams().request(cfg, config=assigned.config)
    recs = await recommendations_for(user_id, client, catalog, cfg, recommender, request, assigned)
    return SeedResponse(user_id=user_id, track_ids=known_tracks, artists=known_artists,
                        unknown_tracks=resolved.unknown_tracks, unknown_artists=resolved.unknown_artists,
                        recommendations=Recommendations.model_validate(recs))


router = APIRouter()
router.include_router(reads)
router.include_router(catalog_reads)
router.include_router(writes)
