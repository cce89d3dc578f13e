"""`seed`: tracks nearest the taste of a new listener's declared favourites (cold start)."""

from __future__ import annotations

from collections.abc import Collection

from ranking.candidates import SourceCandidates, no_candidates
from ranking.catalog_view import taste_neighbours
from ranking.config import DEFAULT_QUOTAS
from ranking.feature_space import FeatureSpace
from ranking.seeds import SeedProfile
from ranking.sources.base import CandidateSource, SourceContext

NAME = "seed"


def seed_candidates(
    space: FeatureSpace, seed: SeedProfile, n: int = DEFAULT_QUOTAS[NAME], exclude: Collection[int] = ()
) -> SourceCandidates:
    """Nearest tracks to a seed's taste (the seed tracks themselves left out)."""
    if not seed.taste:
        return no_candidates(NAME)
    return taste_neighbours(space, seed.taste, n, set(exclude) | set(seed.positions), source=NAME)


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    if ctx.seed is None or not ctx.seed.taste:
        return None
    return seed_candidates(ctx.view.space, ctx.seed, n, ctx.excluded)


SOURCE = CandidateSource(NAME, propose)
