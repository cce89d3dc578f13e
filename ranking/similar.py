"""Tracks like one track (`GET /v1/tracks/{id}/similar`): audio neighbours plus co-listening."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ranking.candidates import merge_candidates
from ranking.catalog_view import CatalogView
from ranking.diversity import diversify
from ranking.moods import mood_term
from ranking.pipeline import RankedTrack, RecommendRequest
from ranking.scoring import describe_taste
from ranking.sources.co_listening import NAME as CO_LISTENING
from ranking.sources.co_listening import co_listening_neighbours


def similar_to(
    view: CatalogView,
    position: int,
    neighbours: Sequence[tuple[str, float]],
    request: RecommendRequest,
) -> list[RankedTrack]:
    """Tracks like one track: its audio neighbours and its co-listening neighbours, artist-capped.

    score = taste kernel to the track + `config.similar_co_listening` × co-listening count / the
    row's top count; the track's own artist is capped like any other (`config.max_per_artist`)."""
    config = request.config
    index = view.index
    track = index.tracks[position]
    exclude = {position} | {index.position[t] for t in request.exclude if t in index.position}
    sources = []
    if index.has_features[position]:
        sources.append(view.taste_source(index.features[position], config.quota("taste"), exclude))
    sources.append(co_listening_neighbours(index, [(track.track_id, 1.0)], {track.track_id: neighbours},
                                           config.quota(CO_LISTENING), exclude=exclude))
    merged = merge_candidates(sources, quotas=config.quotas, limit=config.merge_limit, exclude=exclude)
    positions = np.array([c.position for c in merged], dtype=np.int64)
    if len(positions) == 0:
        return []
    if index.has_features[position]:
        fit = view.space.kernel_at(index.features[position], positions, 1.0)
    else:
        fit = np.zeros(len(positions), np.float32)
    together = np.array([c.sources.get(CO_LISTENING, 0.0) for c in merged], dtype=np.float32)
    if together.max(initial=0.0) > 0:
        together = config.similar_co_listening * together / together.max()
    total = fit + together
    target = request.target
    if target is not None:
        total = total + mood_term(index.features[positions], target)
    order = diversify(total, view.space.z[positions], index.artist_of[positions], request.k,
                      request.diversity, config.max_per_artist, None)
    words = describe_taste(index, list(index.features[position]), limit=2)
    title = f"{track.title or track.track_id}" + (f" by {track.artist}" if track.artist else "")
    out = []
    for j in order:
        reasons = []
        if together[j] > 0.05:
            reasons.append(f"listeners play it with {title}")
        if fit[j] > 0.6:
            reasons.append(f"sounds like {title}" + (f": {' and '.join(words)}" if words else ""))
        if target is not None and mood_term(index.features[positions[j : j + 1]], target)[0] > 0.3:
            reasons.append(target.label)
        other = index.tracks[int(positions[j])]
        out.append(RankedTrack(
            position=int(positions[j]), track_id=other.track_id, score=round(float(total[j]), 6),
            reasons=reasons or [f"close to {title}"], sources=sorted(merged[j].sources), engagement=None,
        ))
    return out


