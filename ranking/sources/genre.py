"""`genre`: the best tracks of the listener's strongest genres (by taste fit, else popularity)."""

from __future__ import annotations

from ranking.candidates import SourceCandidates
from ranking.sources.base import CandidateSource, SourceContext
from ranking.sources.grouped import best_within, strongest

NAME = "genre"


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    profile = ctx.scoring_profile
    if profile is None:
        return None
    names = strongest(profile.genres, ctx.config.strongest_genres)
    return best_within(ctx.view, ctx.view.genre_rows, names, profile.taste or None, n, ctx.excluded, NAME)


SOURCE = CandidateSource(NAME, propose)
