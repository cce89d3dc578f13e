"""`similar_artists`: the best tracks of artists that listeners with the same taste enjoy.

Artists ranked by `ranking.collaborative.scores_at` (cosine item-kNN over the listener's liked
artists, from the flow's artist memory); each proposes its best tracks (by the taste kernel when the
listener has a taste, else by popularity), taken in turns.
"""

from __future__ import annotations

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.collaborative import score_array
from ranking.sources.base import CandidateSource, SourceContext

NAME = "similar_artists"


def propose(ctx: SourceContext, n: int) -> SourceCandidates | None:
    if not ctx.signals.artist_scores:
        return None
    view, config = ctx.view, ctx.config
    index = view.index
    liked = ctx.profile.artists if ctx.profile is not None else {}
    taste = ctx.scoring_profile.taste if ctx.scoring_profile is not None else None
    per_artist = max(config.max_per_artist, 1)
    scores = score_array(ctx.signals.artist_scores, index)
    # Artists that can be proposed: scored, not liked, with tracks (`view.artist_rows` holds every
    # catalog artist but the blank name; checked below for the few chosen).
    eligible = scores > 0
    get = index.artist_position.get
    eligible[[p for p in map(get, ("", *liked)) if p is not None]] = False
    names, rows_of = index.artist_names, view.artist_rows
    k = max(1, n // per_artist)
    while True:
        # The best few of a sort by (−score, name) (names are unique: no ties): those at or above
        # the k-th best score (ties at the cut included), sorted, without sorting all.
        candidates = np.flatnonzero(eligible)
        values = scores[candidates]
        if len(candidates) > k:
            cut = np.partition(values, len(values) - k)[len(values) - k]
            candidates, values = candidates[values >= cut], values[values >= cut]
        chosen = sorted(zip([names[p] for p in candidates.tolist()], values.tolist(), strict=True),
                        key=lambda kv: (-kv[1], kv[0]))[:k]
        missing = [get(a) for a, _ in chosen if a not in rows_of]
        if not missing:
            break
        eligible[missing] = False
    if not chosen or n <= 0:
        return SourceCandidates(NAME, np.zeros(0, np.int64), np.zeros(0, np.float32))
    # All chosen artists' tracks in one array (group = the artist's rank): one exclusion test, one
    # kernel and one sort per request instead of one each per artist.
    groups = [view.artist_rows[artist] for artist, _ in chosen]
    rows = np.concatenate(groups)
    group = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    if ctx.excluded:
        keep = ~np.isin(rows, np.fromiter(ctx.excluded, np.int64, len(ctx.excluded)))
        rows, group = rows[keep], group[keep]
    fit = view.space.kernel_at(taste, rows, 1.0) if taste else view.index.popularity[rows]
    order = np.lexsort((rows, -fit, group))  # per artist: best fit first, ties by position
    rows, group = rows[order], group[order]
    depth = np.arange(len(rows)) - np.searchsorted(group, group)  # rank within its artist
    # Taken in turns: every artist's best, then every artist's second...
    turns = np.flatnonzero(depth < config.max_per_artist)
    turns = turns[np.lexsort((group[turns], depth[turns]))][:n]
    values = np.array([value for _, value in chosen], dtype=np.float32)
    return SourceCandidates(NAME, rows[turns].astype(np.int64), values[group[turns]])


SOURCE = CandidateSource(NAME, propose)
