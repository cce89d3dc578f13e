"""Exploration sources: tracks the listener's usual sources rarely surface. They take no part in
the merge (`RankingConfig.sources`); `ranking.explore` draws its slots from them, one arm of the
bandit each (with `trending`).

| source | proposes |
|---|---|
| `adjacent` | tracks a step away from the taste: taste kernel within `explore_band`, the nearest first |
| `new_genres` | tracks of genres the listener has no affinity for yet, nearest the taste first |
| `long_tail` | tracks less popular than the catalog's median, nearest the taste first |
"""

from __future__ import annotations

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.feature_space import top_positions
from ranking.sources.base import CandidateSource, SourceContext

ADJACENT = "adjacent"
NEW_GENRES = "new_genres"
LONG_TAIL = "long_tail"


def _taste(ctx: SourceContext) -> list[float] | None:
    profile = ctx.scoring_profile
    return profile.taste if profile is not None and profile.taste else None


def _best(ctx: SourceContext, source: str, scores: np.ndarray, n: int) -> SourceCandidates:
    scores = scores.astype(np.float32, copy=True)
    if ctx.excluded:
        scores[np.fromiter(ctx.excluded, dtype=np.int64)] = -np.inf
    top = top_positions(scores, n)
    return SourceCandidates(source, top, scores[top])


def propose_adjacent(ctx: SourceContext, n: int) -> SourceCandidates | None:
    taste = _taste(ctx)
    if taste is None:
        return None
    kernel = ctx.view.space.kernel(taste, ctx.config.taste_bandwidth)
    low, high = ctx.config.explore_band
    inside = (kernel >= low) & (kernel <= high) & ctx.view.index.has_features
    return _best(ctx, ADJACENT, np.where(inside, kernel, -np.inf), n)


def propose_new_genres(ctx: SourceContext, n: int) -> SourceCandidates | None:
    taste = _taste(ctx)
    profile = ctx.scoring_profile
    index = ctx.view.index
    if taste is None or profile is None or not index.genre_names:
        return None
    known = np.zeros(len(index.genre_names), dtype=np.float32)
    for name, score in profile.genres.items():
        g = index.genre_position.get(name)
        if g is not None and score != 0:
            known[g] = 1.0
    new = (index.genre_matrix @ known) == 0
    new &= index.genre_matrix.sum(axis=1) > 0
    kernel = ctx.view.space.kernel(taste, ctx.config.taste_bandwidth)
    return _best(ctx, NEW_GENRES, np.where(new, kernel, -np.inf), n)


def propose_long_tail(ctx: SourceContext, n: int) -> SourceCandidates | None:
    taste = _taste(ctx)
    if taste is None:
        return None
    index = ctx.view.index
    tail = index.popularity < np.median(index.popularity)
    kernel = ctx.view.space.kernel(taste, ctx.config.taste_bandwidth)
    return _best(ctx, LONG_TAIL, np.where(tail, kernel, -np.inf), n)


SOURCES = (
    CandidateSource(ADJACENT, propose_adjacent),
    CandidateSource(NEW_GENRES, propose_new_genres),
    CandidateSource(LONG_TAIL, propose_long_tail),
)
