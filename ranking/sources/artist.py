"""`artist`: the best tracks of the listener's strongest artists (by taste fit, else popularity)."""

from __future__ import annotations

from ranking.candidates import SourceCandidates
from ranking.sources.base import CandidateSource, SourceContext
from ranking.sources.grouped import best_within, strongest

NAME = "artist"


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    profile = ctx.scoring_profile
    if profile is None:
        return None
    names = strongest(profile.artists, ctx.config.strongest_artists)
    return best_within(ctx.view, ctx.view.artist_rows, names, profile.taste or None, n, ctx.excluded, NAME)


SOURCE = CandidateSource(NAME, propose)
