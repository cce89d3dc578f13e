"""Search: `GET /v1/search?q=...` (`read` scope): tracks for a request in words, optionally for a
listener (their live taste blends in, their exclusions apply). `ranking.search` does the work."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ranking.pipeline import RecommendRequest
from ranking.search import Listener, SearchResult, search, understand
from serving.auth import require
from serving.deps import CatalogDep, ConfigDep, RecommenderDep, RecommendParams, RedisDep, ServedDep
from serving.errors import ERROR_RESPONSES, ApiError
from serving.experiments import assigned_for
from serving.models import Interpretation, SearchResponse, SearchTrack
from serving.routers.shared import catalog_view, listener, redis_call
from serving.search_index import LiveSearchIndex

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(require("read"))],
                   responses=ERROR_RESPONSES)

_Q_HELP = ('What the listener asks for, in words: "calm acoustic songs for studying", "upbeat 90s rock", '
           'an artist, a title, "기분 좋은 노래 틀어줘".')
_USER_HELP = "A listener: their live taste blends into the order and their exclusions apply."


async def get_search_index(request: Request) -> LiveSearchIndex:
    return request.app.state.search_index


def _interpretation(result: SearchResult) -> Interpretation:
    parsed = result.parsed
    titles = parsed.values("title")
    return Interpretation(
        moods=parsed.values("mood"), activities=parsed.values("activity"), times_of_day=parsed.values("time"),
        features=parsed.values("feature"), genres=result.genres,
        era={"from": result.era[0], "to": result.era[1]} if result.era else None,
        artists=result.artists, title=titles[0] if titles else None, words=parsed.words,
        by_similarity={c.surface: c.value for c in parsed.concepts if c.similarity is not None},
        ignored=parsed.ignored, relaxed=result.relaxed, semantic=result.semantic,
    )


@router.get("/search", response_model=SearchResponse)
async def search_tracks(
    request: Request,
    q: Annotated[str, Query(max_length=256, description=_Q_HELP)],
    client: RedisDep, catalog: CatalogDep, cfg: ConfigDep, recommender: RecommenderDep, served: ServedDep,
    user_id: Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$",
                                         description=_USER_HELP)] = None,
    k: Annotated[int, Query(ge=1, le=100, description="How many tracks.")] = 10,
) -> SearchResponse:
    """Tracks for a request in words.

    Understands moods, activities, times of day, eras (release years), genres and audio-feature
    words as targets of the ranking, looks up artists and titles, matches other words against
    titles and artists, and compares the query with every track by sentence embedding (a model
    shipped in its wheel). With `user_id` the listener's live taste blends in and their exclusions
    apply. The answer says what it understood and why each track fits; an empty or unintelligible
    query is a 422.
    """
    if not q.strip():
        raise ApiError(422, "empty_query", "the query is empty: say what to play, e.g. 'upbeat 90s rock'",
                       [{"field": "q", "message": "empty"}])
    catalog_view(catalog)  # 503 while the catalog is empty
    live: LiveSearchIndex = await get_search_index(request)
    index = await live.current()
    assigned = assigned_for(cfg, user_id, served)
    config = assigned.config
    parsed = understand(q, index, config)
    if not parsed.intelligible:
        raise ApiError(422, "query_not_understood",
                       f"nothing in {q!r} names a mood, activity, genre, era, artist, title or word of the "
                       "catalog; try e.g. 'calm acoustic songs for studying' or an artist's name",
                       [{"field": "q", "message": "not understood: " + ", ".join(parsed.ignored or [q])}])
    person = None
    state = None
    if user_id is not None:
        state = await listener(client, cfg, user_id)
        base: RecommendRequest = RecommendParams().request(cfg, config=config)
        view = index.view
        seed = recommender.seed_profile(view, state)
        signals, _ = await redis_call(lambda: recommender.signals(client, view, state.profile, seed, base))
        # Search has never scored with the items' live rates: keep it so.
        signals = replace(signals, item_rates=None)
        person = Listener(state.profile, seed, signals, base)
        result = search(index, parsed, k, config, person)
    else:
        result = search(index, parsed, k, config)
    tracks = index.view.index.tracks
    items = []
    for hit in result.hits:
        track = tracks[hit.position]
        items.append(SearchTrack(track_id=track.track_id, score=hit.score, title=track.title,
                                 artist=track.artist, genres=track.genres, reasons=hit.reasons,
                                 sources=["search"], release_year=track.release_year, matched=hit.matched))
    profile = state.profile if state is not None else None
    return SearchResponse(
        query=q, understood=parsed.understood, interpretation=_interpretation(result), user_id=user_id,
        personalised=result.personalised, profile_version=profile.version if profile else None,
        request_id=assigned.request_id, variant=assigned.variant, experiments=assigned.experiments,
        items=items,
    )
