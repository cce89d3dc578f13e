"""Typed FastAPI dependencies: what a route handler may ask for, and the request parameters.

The process-wide objects live on `app.state` (opened by `create_app`'s lifespan); a handler asks for
them by type, e.g. `client: RedisDep`. `RecommendParams` is what a caller asks of a list, parsed from
the query once (`RecommendParamsDep`) or taken from a rank body; it becomes the pipeline's
`RecommendRequest` field by field, so a new parameter reaches the request, and with it the answer
cache's key (`serving.recommender.request_key`), without being listed anywhere else.

The dependencies are `async def`: FastAPI runs a plain `def` dependency in its thread pool.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Annotated, Any, Self

import redis.asyncio as aioredis
from fastapi import Depends, Path, Query, Request

from ranking.config import ExclusionRules, RankingConfig
from ranking.moods import ACTIVITIES, MOODS, known_name
from ranking.pipeline import RecommendRequest
from schemas._text import IDENTIFIER_PATTERN
from serving.auth import Principal, current_principal
from serving.catalog import LiveCatalog
from serving.config import ServingConfig
from serving.errors import ApiError
from serving.producer import AckedProducer
from serving.recommender import Recommender


async def get_redis(request: Request) -> aioredis.Redis:
    return request.app.state.redis


async def get_producer(request: Request) -> AckedProducer:
    return request.app.state.producer


async def get_catalog(request: Request) -> LiveCatalog:
    return request.app.state.catalog


async def get_config(request: Request) -> ServingConfig:
    return request.app.state.config


async def get_recommender(request: Request) -> Recommender:
    return request.app.state.recommender


async def get_experiment_counter(request: Request) -> Any:
    return getattr(request.app.state, "experiment_answers", None)


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
ProducerDep = Annotated[AckedProducer, Depends(get_producer)]
CatalogDep = Annotated[LiveCatalog, Depends(get_catalog)]
ConfigDep = Annotated[ServingConfig, Depends(get_config)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
ServedDep = Annotated[Any, Depends(get_experiment_counter)]
"""The Prometheus counter of answers per experiment variant (None before the app starts)."""
PrincipalDep = Annotated[Principal, Depends(current_principal)]
"""Who the route's `serving.auth.require` let in: a service key, a `Listener`, or None (demo mode)."""

UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=IDENTIFIER_PATTERN)]
"""A user id as events carry it (`schemas._text.Identifier`): no control characters, no whitespace
at either end."""
TrackId = Annotated[str, Path(min_length=1, max_length=256)]


@dataclass(frozen=True)
class RecommendParams:
    """What a caller asks of a list. Every field is a `RecommendRequest` field of the same name."""

    k: int = 10
    mood: str | None = None
    activity: str | None = None
    hour: int | None = None
    diversity: float | None = None
    """None: the ranking config's `diversity_default` (the deployment's, or the experiment variant's)."""
    discovery: float = 0.0
    exclude: frozenset[str] = frozenset()
    familiar: float = 0.0

    @classmethod
    def from_body(cls, body: Any, **given: Any) -> Self:
        """The fields a request body has (e.g. `RankRequest`), plus `given`; the rest default."""
        names = type(body).model_fields
        return cls(**{f.name: getattr(body, f.name) for f in fields(cls) if f.name in names}, **given)

    def request(self, cfg: ServingConfig, now_ms: int | None = None,
                config: RankingConfig | None = None) -> RecommendRequest:
        """The pipeline's request: every field as given, the clock, the exclusion settings, and the
        ranking config (`config`, e.g. an experiment variant's; default the deployment's).

        Raises a 422 `invalid_parameters` for a mood or activity nobody knows (checked here, not when
        the query is parsed, so a route's own checks, e.g. an unknown track, answer first as before).
        """
        details = []
        for field, value in (("mood", self.mood), ("activity", self.activity)):
            if value is not None and known_name(value) is None:
                details.append({"field": field, "message": f"unknown {field} {value!r}; known: "
                                + ", ".join(sorted({*MOODS, *ACTIVITIES}))})
        if details:
            raise ApiError(422, "invalid_parameters", "unknown mood or activity", details)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        config = cfg.ranking if config is None else config
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        if given["diversity"] is None:
            given["diversity"] = config.diversity_default
        return RecommendRequest(
            **given, now_ms=now_ms, clock_hour=now_ms // 3_600_000 % 24,
            rules=ExclusionRules(cooldown_s=cfg.repeat_cooldown_s), config=config,
        )


_MOOD_HELP = ("energetic, chill, happy, melancholic, party, focused, romantic or workout "
              "(aliases: gym, sad, ...).")
_ACTIVITY_HELP = "running, studying, commuting, sleeping, cooking, working_out or relaxing."
_HOUR_HELP = "The listener's local hour (0-23): nudges toward the time of day (morning, evening, ...)."
_DIVERSITY_HELP = ("0: pure relevance; 1: spread across the listener's taste clusters. "
                   "At most 2 per artist. Default: the deployment's (`diversity_default`, 0.3 unless "
                   "configured).")
_DISCOVERY_HELP = "0: no change; 1: strongly favour less popular tracks close to the taste."
_FAMILIAR_HELP = ("Share of the list (0-1) kept for tracks the listener enjoyed before, once the repeat "
                  "cool-down is over (default 0: they only compete like any other track).")

K = Annotated[int, Query(ge=1, le=100, description="How many tracks.")]
Mood = Annotated[str | None, Query(max_length=64, description=_MOOD_HELP)]
Activity = Annotated[str | None, Query(max_length=64, description=_ACTIVITY_HELP)]
Hour = Annotated[int | None, Query(ge=0, le=23, description=_HOUR_HELP)]
Diversity = Annotated[float | None, Query(ge=0, le=1, description=_DIVERSITY_HELP)]
Discovery = Annotated[float, Query(ge=0, le=1, description=_DISCOVERY_HELP)]
Exclude = Annotated[list[str], Query(max_length=500, description="Track ids not to return.")]
Familiar = Annotated[float, Query(ge=0, le=1, description=_FAMILIAR_HELP)]

_DEFAULT = RecommendParams()


async def recommend_params(
    k: K = _DEFAULT.k,
    mood: Mood = None,
    activity: Activity = None,
    hour: Hour = None,
    diversity: Diversity = _DEFAULT.diversity,
    discovery: Discovery = _DEFAULT.discovery,
    exclude: Exclude = [],  # noqa: B006 (FastAPI copies a default; a list is how a repeated query parameter is typed)
    familiar: Familiar = _DEFAULT.familiar,
) -> RecommendParams:
    """The recommendation query: every `RecommendParams` field."""
    return RecommendParams(k=k, mood=mood, activity=activity, hour=hour, diversity=diversity,
                           discovery=discovery, exclude=frozenset(exclude), familiar=familiar)


async def similar_params(
    k: K = _DEFAULT.k,
    mood: Mood = None,
    activity: Activity = None,
    diversity: Diversity = _DEFAULT.diversity,
    exclude: Exclude = [],  # noqa: B006
) -> RecommendParams:
    """The similar-tracks query: the same parameters less `hour` and `discovery`, which it does not take."""
    return RecommendParams(k=k, mood=mood, activity=activity, diversity=diversity, exclude=frozenset(exclude))


RecommendParamsDep = Annotated[RecommendParams, Depends(recommend_params)]
SimilarParamsDep = Annotated[RecommendParams, Depends(similar_params)]
