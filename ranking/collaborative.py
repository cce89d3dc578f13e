"""Artist-level collaborative scores of one listener, from the flow's artist memory.

For the listener's seed artists H with weights w_h (`seed_artists`: tanh(affinity / scale) of the
liked artists, plus a boost for the artists of the latest positives, so a listener who switches
taste turns the collaborative scores too) and any artist b:

    score(b) = Σ_{h ∈ H} w_h · N_h^−x · sim(h, b) / max_c sim(h, c),
    sim(h, b) = C(h, b) / (N_h^(1−β) · N_b^β + shrink)

C(h, b) = how many listeners' histories hold both (the row of h), N = listeners of an artist
(`online_models.artist_memory`); β = ½ and shrink 0 is the cosine, β above ½ the asymmetric cosine
of Aiolli (2013). Cosine keeps popular artists from winning by popularity alone;
dividing each liked artist's row by its best entry gives every liked artist the same vote (an
artist with few listeners has large cosines everywhere and would otherwise shout); summing over the
whole liked set is item-kNN over the listener's history. N_h^−x (`collaborative_idf` = x) makes
a liked artist everybody plays say less about this listener than a rare one does. `via[b]` is the
liked artist that contributed most (for the reason "fans of X play it too").

>>> scores, via = artist_scores({"Muse": 0.8}, {"Muse": [("Blur", 3.0), ("Oasis", 1.0)]},
...                             {"Muse": 4, "Blur": 9, "Oasis": 4})
>>> {k: round(v, 3) for k, v in scores.items()}, via["Blur"]
({'Blur': 0.8, 'Oasis': 0.4}, 'Muse')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ranking.catalog_index import CatalogIndex
from ranking.config import RANKING_CONFIG, RankingConfig
from schemas.event_types import is_positive
from schemas.profile_codec import UserProfile
from schemas.tracks import Track

_NONE = (0.0, "")


def seed_artists(profile: UserProfile | None, index: CatalogIndex | None,
                 config: RankingConfig = RANKING_CONFIG) -> dict[str, float]:
    """The listener's seed artists and their weights, strongest first: tanh(affinity / scale) of the
    `collaborative_artists` strongest liked artists, plus `collaborative_session` × s × recency^i
    for the artist of each of the latest `session_positives` positives (i = 0 for the newest), where
    s ramps from 0 to 1 as their novelty (`session_novelty`: how far they sit outside the genres the
    listener usually plays) crosses `collaborative_switch`; by the same ramp the liked artists'
    weights fade out. A listener who switches taste turns the collaborative scores at once; one who
    keeps listening as usual, or wanders among their usual genres, keeps their whole history's."""
    if profile is None:
        return {}
    liked = sorted(((a, v) for a, v in profile.artists.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
    scale = config.collaborative_seed_scale
    weights = {a: math.tanh(v / scale) for a, v in liked[: config.collaborative_artists]}
    if index is not None and config.collaborative_session > 0:
        latest = []
        for item in reversed(profile.recent):
            if len(latest) >= config.session_positives:
                break
            i = index.position.get(item.track_id)
            if i is not None and is_positive(item.type):
                latest.append(index.tracks[i])
        novelty = session_novelty(profile, latest)
        # A clear switch (novelty past `collaborative_switch`) fades the long-term seeds out, so the
        # liked artists of the old taste stop outvoting the new one.
        low, high = config.collaborative_switch
        fade = min(1.0, max(0.0, (novelty - low) / (high - low))) if high > low else float(novelty >= low)
        if fade > 0:
            weights = {a: w * (1.0 - fade) for a, w in weights.items()}
        # Boosted by the switch ramp, not the raw novelty: a listener of many genres has some novelty
        # on almost every play, and boosting it made their collaborative seeds follow noise.
        for rank, track in enumerate(latest):
            if track.artist and fade > 0:
                boost = config.collaborative_session * fade * config.session_recency**rank
                weights[track.artist] = weights.get(track.artist, 0.0) + boost
    return dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])))


def session_novelty(profile: UserProfile, latest: Sequence[Track]) -> float:
    """1 − (mean over the latest positives of their best genre affinity) / the profile's best genre
    affinity, in [0, 1]: 0 when they are in the listener's top genre, 1 in genres never played."""
    top = max((v for v in profile.genres.values() if v > 0), default=0.0)
    if top <= 0 or not latest:
        return 0.0
    fit = [max((max(profile.genres.get(g, 0.0), 0.0) for g in t.genres), default=0.0) / top for t in latest]
    return min(1.0, max(0.0, 1.0 - sum(fit) / len(fit)))


def artist_scores(
    seeds: Mapping[str, float],
    rows: Mapping[str, Sequence[tuple[str, float]]],
    listeners: Mapping[str, float],
    normalise_rows: bool = True,
    idf: float = 0.0,
    popularity: float = 0.5,
    shrink: float = 0.0,
) -> tuple[dict[str, float], dict[str, str]]:
    """`(artist → score, artist → strongest seed artist)`; seed artists themselves included. `idf` is
    the exponent x of the seed weights' N_h^−x; `popularity` the exponent of N_b in the similarity's
    denominator (½: the cosine; more: popular artists count less, Aiolli's asymmetric cosine); `shrink`
    is added to that denominator (pairs seen by few listeners count less)."""
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for h, weight in seeds.items():
        row = rows.get(h)
        n_h = listeners.get(h, 0.0)
        if weight <= 0 or not row or n_h <= 0:
            continue
        # One pass: count / √N_b is the cosine times √N_h, so the row's scale (√N_h, or the row's
        # best entry when normalising) is applied once per seed, not once per entry.
        scaled = []
        top = 0.0
        if popularity == 0.5 and not shrink:
            for b, count in row:
                n_b = listeners.get(b, 0.0)
                if count > 0 and n_b > 0:
                    c = count / math.sqrt(n_b)
                    scaled.append((b, c))
                    if c > top:
                        top = c
            row_scale = math.sqrt(n_h)
        else:
            seed_part = n_h ** (1.0 - popularity)
            for b, count in row:
                n_b = listeners.get(b, 0.0)
                if count > 0 and n_b > 0:
                    c = count / (seed_part * n_b**popularity + shrink)
                    scaled.append((b, c))
                    if c > top:
                        top = c
            row_scale = 1.0
        if not scaled:
            continue
        factor = weight / top if normalise_rows else weight / row_scale
        if idf:
            factor *= n_h**-idf
        get_score, get_best = scores.get, best.get
        for b, c in scaled:
            share = factor * c
            scores[b] = get_score(b, 0.0) + share
            if share > get_best(b, _NONE)[0]:
                best[b] = (share, h)
    return scores, {b: h for b, (_, h) in best.items()}
