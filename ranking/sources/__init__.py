"""Candidate sources, looked up by name; which ones run, in which order and with which quotas is
configuration (`RankingConfig.sources`, `RankingConfig.quotas`).

A new source is one module here (a `propose(context, n)` and a `SOURCE`) plus one line below.

>>> from ranking.config import RankingConfig
>>> sorted(SOURCES) == sorted({*RankingConfig().sources, *RankingConfig().explore_arms})
True
>>> set(RankingConfig().explore_arms) <= set(SOURCES)
True
"""

from __future__ import annotations

from ranking.candidates import SourceCandidates
from ranking.sources import (
    artist,
    co_listening,
    explore,
    familiar,
    genre,
    popular,
    seed,
    session,
    similar_artists,
    taste,
    trending,
)
from ranking.sources.base import CandidateSource, Signals, SourceContext

SOURCES: dict[str, CandidateSource] = {
    source.NAME: source.SOURCE
    for source in (taste, session, co_listening, similar_artists, genre, artist, seed, trending, popular,
                   familiar)
}
SOURCES.update({source.name: source for source in explore.SOURCES})
"""Every source by name; the exploration sources (`ranking.sources.explore`) are arms of the
exploration bandit (`RankingConfig.explore_arms`), not part of the merge."""


def propose_all(ctx: SourceContext) -> list[SourceCandidates]:
    """Every configured source's proposals, in the configured order (unknown names are an error)."""
    out = []
    for name in ctx.config.sources:
        source = SOURCES.get(name)
        if source is None:
            raise ValueError(f"unknown candidate source {name!r}; known: {', '.join(sorted(SOURCES))}")
        proposed = source.propose(ctx, ctx.config.quota(name))
        if proposed is not None:
            out.append(proposed)
    return out


__all__ = ["SOURCES", "CandidateSource", "Signals", "SourceContext", "propose_all"]
