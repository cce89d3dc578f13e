"""What serving reads off one listener's live profile: exclusions, recent likes, taste clusters, the
current session, co-listening seeds, and how much their own engagement model counts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ranking.catalog_view import CatalogView
from ranking.config import RANKING_CONFIG, ExclusionRules, RankingConfig
from ranking.diversity import TasteClusters, taste_clusters
from schemas.event_types import SEMANTICS, is_positive
from schemas.events import EventType
from schemas.profile_codec import UserProfile


def excluded_positions(
    view: CatalogView, profile: UserProfile | None, exclude: frozenset[str], rules: ExclusionRules
) -> set[int]:
    """Catalog positions not to offer: the request's list, tracks within the repeat cool-down
    (event time: seconds before the listener's newest event), disliked tracks, disliked artists.
    A recent track without a time (a codec v2 profile) counts as within the cool-down."""
    index = view.index
    out = {index.position[t] for t in exclude if t in index.position}
    if profile is None:
        return out
    since = profile.as_of_ms - 1000 * rules.cooldown_s
    for item in profile.recent:
        i = index.position.get(item.track_id)
        if i is not None and (SEMANTICS[item.type].never_again or item.ts_ms == 0 or item.ts_ms > since):
            out.add(i)
    disliked = [name for name, score in profile.artists.items() if score < rules.disliked_artist_below]
    if disliked:
        keys = [k for name in disliked for k in view.artist_keys.get(name.strip().lower(), [])]
        exact = [k for k in keys if index.artist_names[k] in profile.artists]
        if exact:
            out.update(int(i) for i in np.flatnonzero(np.isin(index.artist_of, exact)))
    return out


def liked_positions(
    view: CatalogView, profile: UserProfile | None, limit: int = RANKING_CONFIG.cluster_likes
) -> list[int]:
    """Catalog positions of the profile's recent likes and completes with features, newest first."""
    if profile is None:
        return []
    out: list[int] = []
    for item in reversed(profile.recent):
        if is_positive(item.type):
            i = view.index.position.get(item.track_id)
            if i is not None and view.index.has_features[i] and i not in out:
                out.append(i)
                if len(out) >= limit:
                    break
    return out


def listener_clusters(
    view: CatalogView, profile: UserProfile | None, config: RankingConfig = RANKING_CONFIG
) -> TasteClusters | None:
    liked = liked_positions(view, profile, config.cluster_likes)
    if len(liked) < 4:
        return None
    return taste_clusters(view.space.z[liked])


@dataclass(frozen=True)
class Session:
    """What the listener enjoyed just now: the recency-weighted centre of their latest positives, and
    each genre's weight among them (the newest counts most, so one like already turns the session)."""

    centroid: np.ndarray
    genres: Mapping[str, float]
    positions: tuple[int, ...]


def session_of(
    view: CatalogView, profile: UserProfile | None, config: RankingConfig = RANKING_CONFIG
) -> Session | None:
    """The short-term taste: it follows a listener who switches at once (the long-term taste and the
    decayed affinities take many events to turn around)."""
    liked = liked_positions(view, profile, config.session_positives)
    if not liked:
        return None
    weights = config.session_recency ** np.arange(len(liked))
    weights /= weights.sum()
    genres: dict[str, float] = {}
    for w, i in zip(weights, liked, strict=True):
        for g in set(view.index.tracks[i].genres):
            genres[g] = genres.get(g, 0.0) + float(w)
    centroid = (weights[:, None] * view.index.features[liked]).sum(0).astype(np.float32)
    return Session(centroid, genres, tuple(liked))


def familiar_positions(
    view: CatalogView, profile: UserProfile | None, rules: ExclusionRules
) -> list[tuple[int, float]]:
    """Tracks the listener enjoyed whose cool-down is over: `(position, feedback weight)`, newest first."""
    if profile is None:
        return []
    since = profile.as_of_ms - 1000 * rules.cooldown_s
    out = []
    for item in reversed(profile.recent):
        i = view.index.position.get(item.track_id)
        if i is not None and is_positive(item.type) and 0 < item.ts_ms <= since:
            out.append((i, SEMANTICS[item.type].weight))
    return out


def recent_positives(profile: UserProfile, config: RankingConfig = RANKING_CONFIG) -> list[tuple[str, float]]:
    """The profile's latest positives (likes, completes), newest first, each once, with weights.

    weight = feedback weight of the event type (`schemas.event_types`) × recency^(recency rank)."""
    out: dict[str, float] = {}
    rank = 0
    for item in reversed(profile.recent):
        if not is_positive(item.type) or item.track_id in out:
            continue
        out[item.track_id] = SEMANTICS[item.type].weight * config.co_listening_recency**rank
        rank += 1
        if len(out) >= config.co_listening_seeds:
            break
    return list(out.items())


def own_model_share(profile: UserProfile | None, config: RankingConfig = RANKING_CONFIG) -> float:
    """How much the listener's own engagement model counts against the global one: n / (n + 10),
    n = their events with a clear signal (likes, completes, dislikes, skips). A new listener starts
    from the global model and moves to their own as it learns (a warm start done at scoring time, so
    it is the same on every replay)."""
    if profile is None or not profile.model_weights:
        return 0.0
    n = sum(profile.counts.get(t, 0) for t in EventType if SEMANTICS[t].clear_signal)
    return n / (n + config.own_model_prior_events)


