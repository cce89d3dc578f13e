"""`popular`: the most listened tracks in the stream (decayed listens, from the flow's item
statistics), then the catalog's most popular ones as the fallback; more of them for a listener
nobody knows."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.catalog_index import CatalogIndex
from ranking.config import DEFAULT_QUOTAS
from ranking.feature_space import top_positions
from ranking.sources.base import CandidateSource, SourceContext

NAME = "popular"


def popular_candidates(
    index: CatalogIndex, n: int = DEFAULT_QUOTAS[NAME], exclude: Collection[int] = (),
    order: np.ndarray | None = None,
) -> SourceCandidates:
    """The most popular tracks (ties by position).

    `order`: this function's answer for a large n, computed once per catalog; the first n of it not
    excluded are taken without a pass over the catalog (when enough remain)."""
    if order is not None:
        keep: list[int] = []
        for i in order.tolist():
            if i not in exclude:
                keep.append(i)
                if len(keep) >= n:
                    break
        if len(keep) >= n or len(order) >= len(index):
            positions = np.array(keep, dtype=np.int64)
            return SourceCandidates(NAME, positions, index.popularity[positions].astype(np.float32))
    scores = index.popularity.astype(np.float32).copy()
    if exclude:
        scores[np.fromiter(exclude, dtype=np.int64)] = -np.inf
    top = top_positions(scores, n)
    return SourceCandidates(NAME, top, scores[top])


def streamed_positions(index: CatalogIndex,
                       stream_popular: Sequence[tuple[str, float]]) -> list[tuple[int, float]]:
    """The stream's most listened tracks that the catalog knows, as (position, listens), in order
    (serving computes it once per held list: `Signals.stream_popular_positions`)."""
    position = index.position
    return [(position[t], v) for t, v in stream_popular if t in position]


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    if ctx.cold_start:
        n = ctx.config.popular_cold_quota
    index = ctx.view.index
    excluded = ctx.excluded
    known = ctx.signals.stream_popular_positions
    if known is None:
        known = streamed_positions(index, ctx.signals.stream_popular)
    streamed = [(i, v) for i, v in known if i not in excluded][:n]
    catalog = popular_candidates(index, n, ctx.excluded | {i for i, _ in streamed},
                                 order=ctx.view.popular_order)
    if not streamed:
        return catalog
    # Stream first (scored by listens relative to the most listened), the catalog's after them.
    top = max(v for _, v in streamed) or 1.0
    positions = [i for i, _ in streamed] + catalog.positions.tolist()[: n - len(streamed)]
    scores = [v / top for _, v in streamed] + [0.0] * (len(positions) - len(streamed))
    return SourceCandidates(NAME, np.array(positions, np.int64), np.array(scores, np.float32))


SOURCE = CandidateSource(NAME, propose)
