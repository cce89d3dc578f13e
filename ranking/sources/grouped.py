"""The best tracks of a listener's strongest groups (genres, artists): shared by `genre` and `artist`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.catalog_view import CatalogView
from ranking.config import RankingConfig
from ranking.feature_space import top_set
from ranking.sources.base import CandidateSource, SourceContext
from schemas.profile_codec import UserProfile

WITHIN_EXACT_MAX = 20_000
"""A genre with more tracks than this is searched through the cell index (big catalogs only)."""
WITHIN_PROBE = 32
"""Cells probed then (twice the taste source's: a genre is a subset of each cell)."""


def strongest(scores: Mapping[str, float], n: int) -> list[tuple[str, float]]:
    """The n highest positive scores, ties by name."""
    return sorted(((k, v) for k, v in scores.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))[:n]


def best_within(
    view: CatalogView, rows_of: Mapping[str, np.ndarray], names: Sequence[tuple[str, float]],
    taste: Sequence[float] | None, n: int, exclude: Collection[int], source: str,
) -> SourceCandidates:
    """The best tracks of each named group: by the taste kernel when there is a taste, else by
    popularity; the quota shared in proportion to the affinities, taken in turns."""
    parts = []
    total = sum(v for _, v in names) or 1.0
    for name, value in names:
        rows = rows_of.get(name)
        if rows is None or len(rows) == 0:
            continue
        column = view.index.genre_position.get(name)
        if taste and view.partition is not None and len(rows) > WITHIN_EXACT_MAX and column is not None:
            # A big catalog's genre holds tens of thousands of tracks: search only the cells nearest
            # the taste (as the taste source does), keeping the genre's tracks among them.
            near = view.partition.probe(taste, WITHIN_PROBE)
            rows = near[view.index.genre_matrix[near, column] > 0]
            if len(rows) == 0:
                continue
        fit = view.space.kernel_at(taste, rows, 1.0) if taste else view.index.popularity[rows]
        share = max(1, round(n * value / total))
        # Only the best `share + |exclude|` can make it: partition first, so a 100k-track genre
        # costs one pass, then sort the few (ties by position).
        keep = min(len(rows), share + len(exclude))
        best = top_set(fit, keep) if keep < len(rows) else np.arange(len(rows))
        order = best[np.lexsort((rows[best], -fit[best]))]
        # As Python numbers: no numpy scalar per item.
        ranked = zip(rows[order].tolist(), fit[order].tolist(), strict=True)
        parts.append([(i, f) for i, f in ranked if i not in exclude][:share])
    positions: list[int] = []
    scores: list[float] = []
    seen: set[int] = set()
    for depth in range(max((len(p) for p in parts), default=0)):
        for part in parts:
            if depth < len(part) and part[depth][0] not in seen:
                seen.add(part[depth][0])
                positions.append(part[depth][0])
                scores.append(part[depth][1])
    return SourceCandidates(source, np.array(positions, np.int64), np.array(scores, np.float32))


def grouped_source(
    name: str,
    rows_of: Callable[[CatalogView], Mapping[str, np.ndarray]],
    scores_of: Callable[[UserProfile], Mapping[str, float]],
    how_many: Callable[[RankingConfig], int],
) -> CandidateSource:
    """A source of the best tracks of the listener's strongest groups: `rows_of(view)` maps a group
    to its catalog positions, `scores_of(profile)` gives the affinities, `how_many(config)` how
    many groups to draw from."""

    def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
        profile = ctx.scoring_profile
        if profile is None:
            return None
        names = strongest(scores_of(profile), how_many(ctx.config))
        return best_within(ctx.view, rows_of(ctx.view), names, profile.taste or None, n, ctx.excluded, name)

    return CandidateSource(name, propose)
