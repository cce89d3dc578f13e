"""Artist-level collaborative scores of one listener, from the flow's artist memory.

For the listener's liked artists H (positive affinity a_h in the profile) and any artist b:

    score(b) = Σ_{h ∈ H} tanh(a_h / scale) · cos(h, b) / max_c cos(h, c),
    cos(h, b) = C(h, b) / sqrt(N_h · N_b)

C(h, b) = how many listeners' histories hold both (the row of h), N = listeners of an artist
(`online_models.artist_memory`). Cosine keeps popular artists from winning by popularity alone;
dividing each liked artist's row by its best entry gives every liked artist the same vote (an
artist with few listeners has large cosines everywhere and would otherwise shout); summing over the
whole liked set is item-kNN over the listener's history. `via[b]` is the liked artist that
contributed most (for the reason "fans of X play it too").

>>> scores, via = artist_scores({"Muse": 2.0}, {"Muse": [("Blur", 3.0), ("Oasis", 1.0)]},
...                             {"Muse": 4, "Blur": 9, "Oasis": 4})
>>> {k: round(v, 3) for k, v in scores.items()}, via["Blur"]
({'Blur': 0.762, 'Oasis': 0.381}, 'Muse')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def artist_scores(
    liked: Mapping[str, float],
    rows: Mapping[str, Sequence[tuple[str, float]]],
    listeners: Mapping[str, float],
    scale: float = 2.0,
    normalise_rows: bool = True,
) -> tuple[dict[str, float], dict[str, str]]:
    """`(artist → score, artist → strongest liked artist)`; liked artists themselves included."""
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for h, affinity in liked.items():
        row = rows.get(h)
        n_h = listeners.get(h, 0.0)
        if affinity <= 0 or not row or n_h <= 0:
            continue
        cosines = [(b, count / math.sqrt(n_h * listeners[b])) for b, count in row
                   if count > 0 and listeners.get(b, 0.0) > 0]
        if not cosines:
            continue
        weight = math.tanh(affinity / scale)
        if normalise_rows:
            weight /= max(c for _, c in cosines)
        for b, cosine in cosines:
            share = weight * cosine
            scores[b] = scores.get(b, 0.0) + share
            if share > best.get(b, (0.0, ""))[0]:
                best[b] = (share, h)
    return scores, {b: h for b, (_, h) in best.items()}
