"""`trending`: tracks whose short-term heat outruns their long-term heat, overall and in the
listener's genres (`online_models.item_stats`; serving reads the flow's trending sets)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from ranking.candidates import SourceCandidates, ranked_candidates
from ranking.catalog_index import CatalogIndex
from ranking.config import DEFAULT_QUOTAS
from ranking.sources.base import CandidateSource, SourceContext

NAME = "trending"


def ranked_trending(index: CatalogIndex, trending: Sequence[tuple[str, float]]) -> SourceCandidates:
    """`trending_candidates` of the whole list with nothing excluded (`Signals.trending_ranked`):
    excluding from it gives the same answer."""
    return trending_candidates(index, trending, n=len(trending))


def trending_part(index: CatalogIndex,
                  trending: Sequence[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """One trending list (overall, or a genre's) as (catalog positions, float64 scores), in its order,
    the ids the catalog does not know left out: what serving holds per list until the next sync."""
    position = index.position
    known = [(position[t], s) for t, s in trending if t in position]
    return np.array([i for i, _ in known], dtype=np.int64), np.array([s for _, s in known], dtype=np.float64)


def ranked_parts(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> SourceCandidates:
    """`ranked_trending` of the lists concatenated, from their `trending_part`s, in arrays: each
    position at its best score (a score that is not above −inf, NaN included, never counts, as in
    `trending_candidates`), best first, ties by position."""
    positions = np.concatenate([p for p, _ in parts]) if parts else np.zeros(0, np.int64)
    scores = np.concatenate([s for _, s in parts]) if parts else np.zeros(0, np.float64)
    keep = scores > _NONE
    positions, scores = positions[keep], scores[keep]
    order = np.lexsort((positions, -scores))
    positions, scores = positions[order], scores[order]
    _, first = np.unique(positions, return_index=True)  # each position's first = best row
    first.sort()
    return SourceCandidates(NAME, positions[first], scores[first].astype(np.float32))


def trending_candidates(
    index: CatalogIndex, trending: Sequence[tuple[str, float]], n: int = DEFAULT_QUOTAS[NAME],
    exclude: Collection[int] = (), ranked: SourceCandidates | None = None,
) -> SourceCandidates:
    """Tracks from a `(track_id, trending score)` list, in the catalog, each at its best score.

    `ranked`: `ranked_trending(index, trending)`, computed before; the first n of it not excluded
    are the answer (a track's best score and the order do not depend on what is excluded)."""
    excluded = exclude if isinstance(exclude, (set, frozenset)) else set(exclude)
    if ranked is not None:
        keep = [j for j, i in enumerate(ranked.positions.tolist()) if i not in excluded][: max(n, 0)]
        return SourceCandidates(NAME, ranked.positions[keep], ranked.scores[keep])
    position = index.position
    best: dict[int, float] = {}
    for track_id, score in trending:
        i = position.get(track_id)
        if i is not None and i not in excluded and score > best.get(i, _NONE):
            best[i] = float(score)
    return ranked_candidates(NAME, best, n)


_NONE = float("-inf")


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    if not ctx.signals.trending:
        return None
    return trending_candidates(ctx.view.index, ctx.signals.trending, n, ctx.excluded,
                               ctx.signals.trending_ranked)


SOURCE = CandidateSource(NAME, propose)
