"""`taste`: the catalog tracks nearest the listener's taste vector in audio-feature space.

A listener with several taste clusters (`ranking.diversity.taste_clusters`) gets each cluster's
neighbours in turns, so a taste between two clusters does not hide both; a listener nobody knows
gets the neighbours of the catalog's popularity-weighted mean taste.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from ranking.candidates import SourceCandidates, no_candidates
from ranking.catalog_view import taste_neighbours
from ranking.config import DEFAULT_QUOTAS
from ranking.feature_space import FeatureSpace
from ranking.sources.base import CandidateSource, SourceContext

NAME = "taste"


def cluster_neighbours(
    space: FeatureSpace,
    centroids_z: np.ndarray,
    n: int = DEFAULT_QUOTAS[NAME],
    exclude: Collection[int] = (),
    bandwidth: float = 1.0,
    search: Callable[[np.ndarray, int, Collection[int]], SourceCandidates] | None = None,
) -> SourceCandidates:
    """Taste neighbours of each taste cluster, n in all, in turns.

    Taken in turns (best of each cluster first), score = the kernel to the track's own cluster
    centre. `search(taste, n, exclude)` finds one centre's neighbours: the exact `taste_neighbours`
    by default, a `PartitionIndex` query on a big catalog.
    """
    centres = np.asarray(centroids_z, dtype=np.float32)
    if len(centres) == 0:
        return no_candidates(NAME)
    if search is None:
        def search(taste: np.ndarray, k: int, skip: Collection[int]) -> SourceCandidates:
            return taste_neighbours(space, taste, k, skip, bandwidth)
    # Each cluster is asked for n (not n / k) so tracks near two centres do not leave the list short.
    per = [search(c * space.std + space.mean, n, exclude) for c in centres]
    positions: list[int] = []
    scores: list[float] = []
    seen: set[int] = set()
    for rank in range(max(n, 0)):
        for part in per:
            if rank < len(part) and int(part.positions[rank]) not in seen and len(positions) < n:
                seen.add(int(part.positions[rank]))
                positions.append(int(part.positions[rank]))
                scores.append(float(part.scores[rank]))
    return SourceCandidates(NAME, np.array(positions, np.int64), np.array(scores, np.float32))


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    profile, view = ctx.scoring_profile, ctx.view
    if profile is not None and profile.taste:
        if ctx.clusters is not None and ctx.clusters.k >= 2:
            return cluster_neighbours(view.space, ctx.clusters.centroids, n, ctx.excluded,
                                      search=view.taste_source)
        return view.taste_source(profile.taste, n, ctx.excluded)
    if ctx.cold_start:
        return view.taste_source(view.global_taste, n, ctx.excluded)
    return None


SOURCE = CandidateSource(NAME, propose)
