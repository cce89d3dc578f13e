"""`similar_artists`: the best tracks of artists that listeners with the same taste enjoy.

Artists ranked by `ranking.collaborative.artist_scores` (cosine item-kNN over the listener's liked
artists, from the flow's artist memory); each proposes its best tracks (by the taste kernel when the
listener has a taste, else by popularity), taken in turns.
"""

from __future__ import annotations

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.sources.base import CandidateSource, SourceContext

NAME = "similar_artists"


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    scores = ctx.signals.artist_scores
    if not scores:
        return None
    view, config = ctx.view, ctx.config
    liked = ctx.profile.artists if ctx.profile is not None else {}
    ranked = sorted(((a, s) for a, s in scores.items() if a not in liked and a in view.artist_rows),
                    key=lambda kv: (-kv[1], kv[0]))
    taste = ctx.scoring_profile.taste if ctx.scoring_profile is not None else None
    per_artist = config.max_per_artist
    parts: list[tuple[list[int], float]] = []
    for artist, value in ranked[: max(1, n // max(per_artist, 1))]:
        rows = view.artist_rows[artist]
        rows = rows[~np.isin(rows, list(ctx.excluded))] if ctx.excluded else rows
        if len(rows) == 0:
            continue
        fit = view.space.kernel_at(taste, rows, 1.0) if taste else view.index.popularity[rows]
        parts.append((rows[np.lexsort((rows, -fit))][:per_artist].tolist(), value))
    positions: list[int] = []
    values: list[float] = []
    for depth in range(per_artist):
        for part, value in parts:
            if depth < len(part) and len(positions) < n:
                positions.append(int(part[depth]))
                values.append(value)
    return SourceCandidates(NAME, np.array(positions, np.int64), np.array(values, np.float32))


SOURCE = CandidateSource(NAME, propose)
