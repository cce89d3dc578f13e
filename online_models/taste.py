"""The taste learner: one event at a time, a listener's profile moves toward what they enjoy.

What one event does to a `UserProfile` (all in event time, so a replay gives the same profile):

- **taste vector** (nine audio features in [0, 1]): a positive signal of weight w pulls it toward the
  track by `max(min_rate, w / (taste_weight + w))` (a running mean at first, an exponentially
  weighted one once settled, so taste keeps following the listener); a negative signal pushes it
  away from the track by `min_rate × |w|`.
- **genre and artist affinities**: decayed with a half-life in event time, then `+= w`; only the
  strongest (by magnitude) are kept, so strong dislikes are remembered too.
- **skip rate**: running mean, then exponentially weighted, over play/skip/complete events.
- **time-of-day pattern**: likes and completes counted per 4-hour UTC bucket (`tod_counts`).
- **recent tracks**: the latest `recent_size` *distinct* tracks, oldest first, each with the event
  time of its latest event (the repeat policy's cool-down) and one type: the latest, except that a
  dislike stays until a positive event on the track, and a positive track stays positive (at its
  stronger type) through a later play. When the list is full the oldest track that is not disliked
  leaves first, so dislikes are remembered longest.
- **counters, `version` (+1 per applied event), `as_of` (the newest applied event's time)**.

Every event given is applied: which events to apply (duplicates, events too late, events waiting
for their track) is the flow's per-user step's decision (`flows.dedupe`, `flows.user_state`).

>>> from schemas.events import Event
>>> from schemas.profile_codec import UserProfile
>>> from schemas.tracks import Track
>>> features = dict(danceability=0.9, energy=0.8, valence=0.7, acousticness=0.1,
...     instrumentalness=0.0, liveness=0.1, speechiness=0.1, tempo=125.0, loudness=-5.0)
>>> track = Track(track_id="t1", artist="Band", genres=["rock"], **features)
>>> learner = TasteLearner()
>>> profile = UserProfile("u1")
>>> like = Event(event_id="e1", user_id="u1", track_id="t1", type="like", ts=1000)
>>> learner.learn_one(profile, like, track)
>>> profile.version, profile.as_of_ms, profile.taste[0], profile.genres
(1, 1000, 0.9, {'rock': 1.0})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from online_models.feedback import feedback_weight
from schemas.event_types import LISTEN_TYPES, SEMANTICS
from schemas.events import Event, EventType
from schemas.profile_codec import TOD_BUCKETS, RecentTrack, UserProfile
from schemas.tracks import Track, scaled_features

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS


@dataclass(frozen=True)
class TasteConfig:
    min_rate: float = 0.05
    """Smallest step toward a liked track: how fast a settled taste still follows the listener."""
    affinity_half_life_ms: int = 30 * _DAY_MS
    """Genre and artist scores halve after this much event time without reinforcement."""
    skip_rate_alpha: float = 0.05
    max_genres: int = 14
    max_artists: int = 32
    """Artists kept (by |score|): the liked ones are also the artist-level collaborative memory's seeds."""
    recent_size: int = 20


_NEVER_AGAIN: frozenset[EventType] = frozenset(t for t, s in SEMANTICS.items() if s.never_again)


def _remember_track(recent: list[RecentTrack], event: Event, limit: int) -> None:
    """`recent` after `event`: one entry per track, newest last (see the module's rules)."""
    kind = event.type
    track_id = event.track_id
    for i, item in enumerate(recent):
        if item.track_id == track_id:
            old, new = SEMANTICS[item.type], SEMANTICS[kind]
            sticky_dislike = old.never_again and not new.positive
            stays_liked = old.positive and new.weight >= 0 and old.weight >= new.weight
            if sticky_dislike or stays_liked:
                kind = item.type
            del recent[i]
            break
    recent.append(RecentTrack(track_id, kind, event.ts))
    if len(recent) > limit:
        never_again = _NEVER_AGAIN
        drop = next((i for i, item in enumerate(recent) if item.type not in never_again), 0)
        del recent[drop]


def _keep_strongest(scores: dict[str, float], limit: int) -> None:
    if len(scores) > limit:
        ranked = sorted(scores.items(), key=_magnitude, reverse=True)
        scores.clear()
        scores.update(ranked[:limit])


def _magnitude(item: tuple[str, float]) -> float:
    return abs(item[1])


class TasteLearner:
    """Updates a `UserProfile` with one event (and the event's track, if the catalog knows it)."""

    def __init__(self, config: TasteConfig | None = None) -> None:
        self.config = config or TasteConfig()

    def learn_one(
        self, profile: UserProfile, event: Event, track: Track | None, rate_multiplier: float = 1.0
    ) -> None:
        """Apply `event` to `profile` in place.

        `rate_multiplier` scales `min_rate` (the drift detector's `lr_multiplier`: while a listener's
        taste is moving, a settled taste vector follows them faster)."""
        config = self.config
        kind = event.type
        semantics = SEMANTICS[kind]
        weight = feedback_weight(event)
        ts = event.ts
        if track is not None:
            vector = scaled_features(track)
            if vector is not None:
                self._learn_taste(profile, vector, weight, config.min_rate * rate_multiplier)
            self._learn_affinities(profile, track, weight, ts)
        counts = profile.counts
        if semantics.listen:  # the skip rate
            listens = 1 + sum(map(counts.get, LISTEN_TYPES, _NO_COUNTS))
            alpha = max(config.skip_rate_alpha, 1.0 / listens)
            skipped = 1.0 if semantics.skipped else 0.0
            profile.skip_rate += alpha * (skipped - profile.skip_rate)
        if semantics.positive:
            if len(profile.tod_counts) != TOD_BUCKETS:
                profile.tod_counts = [0] * TOD_BUCKETS
            profile.tod_counts[(ts // _HOUR_MS) % 24 // (24 // TOD_BUCKETS)] += 1

        counts[kind] = counts.get(kind, 0) + 1
        _remember_track(profile.recent, event, config.recent_size)
        profile.version += 1
        # The newest applied event's time: an offline batch may arrive after newer events.
        if ts > profile.as_of_ms:
            profile.as_of_ms = ts

    def _learn_taste(
        self, profile: UserProfile, vector: Sequence[float], weight: float, min_rate: float
    ) -> None:
        if weight > 0:
            if not profile.taste:
                profile.taste = list(vector)
                profile.taste_weight = weight
                return
            rate = max(min_rate, weight / (profile.taste_weight + weight))
            profile.taste = [t + rate * (x - t) for t, x in zip(profile.taste, vector, strict=True)]
            profile.taste_weight += weight
        elif weight < 0 and profile.taste:
            # Without a positive anchor there is nothing to push away from yet.
            rate = min_rate * -weight
            profile.taste = [
                min(1.0, max(0.0, t - rate * (x - t)))
                for t, x in zip(profile.taste, vector, strict=True)
            ]

    def _learn_affinities(
        self, profile: UserProfile, track: Track, weight: float, ts: int
    ) -> None:
        genres, artists = profile.genres, profile.artists
        elapsed = ts - profile.affinity_at_ms
        if elapsed > 0:
            decay = 0.5 ** (elapsed / self.config.affinity_half_life_ms)
            for scores in (genres, artists):
                for name, score in scores.items():
                    scores[name] = score * decay  # `*=` without looking the name up again
            profile.affinity_at_ms = ts
        if weight == 0:
            return
        get = genres.get
        for genre in track.genres:
            genres[genre] = get(genre, 0.0) + weight
        artist = track.artist
        if artist:
            artists[artist] = artists.get(artist, 0.0) + weight
        config = self.config
        if len(genres) > config.max_genres:
            _keep_strongest(genres, config.max_genres)
        if len(artists) > config.max_artists:
            _keep_strongest(artists, config.max_artists)


_NO_COUNTS = (0,) * len(LISTEN_TYPES)
