"""`trending`: tracks whose short-term heat outruns their long-term heat, overall and in the
listener's genres (`online_models.item_stats`; serving reads the flow's trending sets)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ranking.candidates import SourceCandidates, ranked_candidates
from ranking.catalog_index import CatalogIndex
from ranking.config import DEFAULT_QUOTAS
from ranking.sources.base import CandidateSource, SourceContext

NAME = "trending"


def trending_candidates(
    index: CatalogIndex, trending: Sequence[tuple[str, float]], n: int = DEFAULT_QUOTAS[NAME],
    exclude: Collection[int] = (),
) -> SourceCandidates:
    """Tracks from a `(track_id, trending score)` list, in the catalog, each at its best score."""
    excluded = exclude if isinstance(exclude, (set, frozenset)) else set(exclude)
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
    return trending_candidates(ctx.view.index, ctx.signals.trending, n, ctx.excluded)


SOURCE = CandidateSource(NAME, propose)
