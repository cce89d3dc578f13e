"""`session`: tracks near what the listener enjoyed just now (`ranking.listener.session_of`)."""

from __future__ import annotations

from ranking.candidates import SourceCandidates
from ranking.sources.base import CandidateSource, SourceContext

NAME = "session"


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    if ctx.session is None:
        return None
    return ctx.view.taste_source(ctx.session.centroid, n, ctx.excluded, source=NAME)


SOURCE = CandidateSource(NAME, propose)
