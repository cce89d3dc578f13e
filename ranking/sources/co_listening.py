"""`co_listening`: tracks other listeners enjoy together with the listener's recent positives.

score = Σ_seed weight × count / the seed row's top count; the seeds are the profile's latest
positives (`ranking.listener.recent_positives`), the rows the flow's co-listening neighbours.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from ranking.candidates import SourceCandidates, ranked_candidates
from ranking.catalog_index import CatalogIndex
from ranking.config import DEFAULT_QUOTAS
from ranking.listener import recent_positives
from ranking.sources.base import CandidateSource, SourceContext

NAME = "co_listening"


def co_listening_neighbours(
    index: CatalogIndex,
    seeds: Sequence[tuple[str, float]],
    neighbours: Mapping[str, Sequence[tuple[str, float]]],
    n: int = DEFAULT_QUOTAS[NAME],
    exclude: Collection[int] = (),
) -> SourceCandidates:
    """Tracks listened together with the seeds: score = Σ_seed weight × count / seed's top count.

    `seeds` are `(track_id, weight)`; `neighbours` maps a track id to its `(neighbour_id, decayed
    count)` list, as the co-listening sorted sets hold it. Seeds themselves and tracks unknown to
    the catalog are left out. Ties by catalog position; `via` is the seed that contributed most.

    >>> from schemas.tracks import Track
    >>> index = CatalogIndex.build([Track(track_id=t) for t in "abc"])
    >>> co = co_listening_neighbours(index, [("a", 1.0)], {"a": [("c", 3.0), ("b", 1.0)]}, n=5)
    >>> co.positions.tolist(), co.scores.tolist(), co.via
    ([2, 1], [1.0, 0.3333333432674408], ['a', 'a'])
    """
    seed_ids = {track_id for track_id, _ in seeds}
    excluded = set(exclude)
    total: dict[int, float] = {}
    best_via: dict[int, tuple[float, str]] = {}
    for seed_id, weight in seeds:
        row = neighbours.get(seed_id) or ()
        top_count = max((count for _, count in row), default=0.0)
        if top_count <= 0:
            continue
        for neighbour_id, count in row:
            i = index.position.get(neighbour_id)
            if i is None or neighbour_id in seed_ids or i in excluded or count <= 0:
                continue
            share = weight * count / top_count
            total[i] = total.get(i, 0.0) + share
            if share > best_via.get(i, (0.0, ""))[0]:
                best_via[i] = (share, seed_id)
    return ranked_candidates(NAME, total, n, via={i: v for i, (_, v) in best_via.items()})


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    if ctx.profile is None or not ctx.signals.neighbours:
        return None
    seeds = recent_positives(ctx.profile, ctx.config)
    return co_listening_neighbours(ctx.view.index, seeds, ctx.signals.neighbours, n, ctx.excluded)


SOURCE = CandidateSource(NAME, propose)
