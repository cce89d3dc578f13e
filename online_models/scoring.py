"""Ranking math: score every catalog track against a live profile, and say why, in words.

The weights below are the one place that decides how much each signal counts.

>>> from schemas.profile_codec import UserProfile
>>> from schemas.tracks import Track
>>> def track(tid, genre, energy):
...     return Track(track_id=tid, title=tid, artist=tid.upper(), genres=[genre], popularity=50,
...                  danceability=0.5, energy=energy, valence=0.5, acousticness=0.5,
...                  instrumentalness=0.0, liveness=0.1, speechiness=0.1, tempo=120, loudness=-6)
>>> index = CatalogIndex.build([track("a", "rock", 0.9), track("b", "rock", 0.85),
...                             track("c", "jazz", 0.2)])
>>> profile = UserProfile("u", taste=list(index.features[0]), genres={"rock": 2.0})
>>> [item.track_id for item in rank(index, profile, k=2, exclude={"a"})]
['b', 'c']
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

from online_models.catalog_index import CatalogIndex
from schemas.profile_codec import UserProfile
from schemas.tracks import AUDIO_FEATURES


@dataclass(frozen=True)
class RankingWeights:
    taste: float = 1.0
    """Audio-feature similarity to the taste vector, in (0, 1]."""
    genre: float = 0.6
    """Mean of the listener's squashed genre affinities over the track's genres, in (-1, 1)."""
    artist: float = 0.8
    """The listener's squashed affinity for the track's artist, in (-1, 1)."""
    popularity: float = 0.15
    """Catalog popularity in [0, 1]: a prior that breaks ties toward known-good tracks."""
    session: float = 0.9
    """× taste kernel to the recency-weighted centre of the latest 3 likes/completes: follows a switch
    at once."""
    session_genre: float = 0.6
    """× the largest session weight among the track's genres (1 when all latest positives share it)."""
    engagement: float = 0.5
    """× 2·(p − ½), p = the listener's engagement model's P(like or complete), in (−1, 1)."""
    quality: float = 0.6
    """× live item quality: (like rate − 0.10) − (skip rate − 0.30), smoothed rates (`item_stats`)."""
    taste_bandwidth: float = 1.0
    """Width, in catalog standard deviations, of the taste similarity kernel."""
    affinity_scale: float = 2.0
    """Affinity scores are squashed as tanh(score / scale)."""


RANKING_WEIGHTS = RankingWeights()

# How a person would name a feature far above (or below) the catalog average.
_FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "danceability": ("danceable", "laid-back rhythm"),
    "energy": ("high-energy", "calm"),
    "valence": ("upbeat", "moody"),
    "acousticness": ("acoustic", "electronic"),
    "instrumentalness": ("instrumental", "vocal"),
    "liveness": ("live-sounding", "studio"),
    "speechiness": ("wordy", "melodic"),
    "tempo": ("fast", "slow"),
    "loudness": ("loud", "quiet"),
}


@dataclass
class ScoredTrack:
    track_id: str
    position: int
    score: float
    reasons: list[str] = field(default_factory=list)


def describe_taste(index: CatalogIndex, taste: list[float], limit: int = 2) -> list[str]:
    """The features where a taste stands furthest from the catalog average, as words."""
    return describe_z((np.asarray(taste, dtype=np.float32) - index.feature_mean) / index.feature_std, limit)


def describe_z(z: np.ndarray, limit: int = 2) -> list[str]:
    """`describe_taste` of a point already z-scored against the catalog (e.g. a taste-cluster centre)."""
    order = np.argsort(-np.abs(z))[:limit]
    return [_FEATURE_WORDS[AUDIO_FEATURES[i]][0 if z[i] > 0 else 1] for i in order if abs(z[i]) > 0.4]


def squash_affinities(scores: Mapping[str, float], position: Mapping[str, int], scale: float) -> np.ndarray:
    """A vector over `position`'s names (len(position) long): tanh(score / scale) for each scored
    name the mapping knows, 0 elsewhere."""
    vector = np.zeros(len(position), dtype=np.float32)
    for name, score in scores.items():
        i = position.get(name)
        if i is not None:
            vector[i] = np.tanh(score / scale)
    return vector


def rank(
    index: CatalogIndex,
    profile: UserProfile,
    k: int,
    exclude: Collection[str] = (),
    weights: RankingWeights = RANKING_WEIGHTS,
) -> list[ScoredTrack]:
    """The k best tracks for `profile`, excluding `exclude`, best first, each with reasons."""
    n = len(index)
    if n == 0 or k <= 0:
        return []
    taste_term = np.zeros(n, dtype=np.float32)
    if profile.taste:
        z_user = (np.asarray(profile.taste, dtype=np.float32) - index.feature_mean) / index.feature_std
        z_tracks = (index.features - index.feature_mean) / index.feature_std
        distance2 = np.mean((z_tracks - z_user) ** 2, axis=1)
        taste_term = np.exp(-distance2 / (2 * weights.taste_bandwidth**2))
    genre_vector = squash_affinities(profile.genres, index.genre_position, weights.affinity_scale)
    genre_term = index.genre_matrix @ genre_vector
    artist_term = squash_affinities(profile.artists, index.artist_position, weights.affinity_scale)[
        index.artist_of]
    scores = (
        weights.taste * taste_term
        + weights.genre * genre_term
        + weights.artist * artist_term
        + weights.popularity * index.popularity
    )
    for track_id in exclude:
        i = index.position.get(track_id)
        if i is not None:
            scores[i] = -np.inf
    top = _top_k(scores, k)
    taste_words = describe_taste(index, profile.taste) if profile.taste else []
    ranked = []
    for i in top:
        if not np.isfinite(scores[i]):
            break
        contributions = {
            "taste": weights.taste * float(taste_term[i]),
            "genre": weights.genre * float(genre_term[i]),
            "artist": weights.artist * float(artist_term[i]),
        }
        ranked.append(
            ScoredTrack(
                track_id=index.tracks[i].track_id,
                position=int(i),
                score=round(float(scores[i]), 6),
                reasons=_reasons(index, profile, int(i), contributions, taste_words),
            )
        )
    return ranked


def cold_start(index: CatalogIndex, k: int, exclude: Collection[str] = ()) -> list[ScoredTrack]:
    """For a listener with no profile: the most popular tracks, taking turns across genres."""
    excluded = set(exclude)
    order = np.argsort(-index.popularity, kind="stable")
    by_genre: dict[str, list[int]] = {}
    for i in order:
        track = index.tracks[i]
        if track.track_id in excluded:
            continue
        by_genre.setdefault(track.genres[0] if track.genres else "", []).append(int(i))
    picked: list[int] = []
    queues = list(by_genre.values())
    depth = 0
    while len(picked) < k and any(depth < len(q) for q in queues):
        picked.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    picked = sorted(picked[: max(k, 0)], key=lambda i: -index.popularity[i])
    return [
        ScoredTrack(
            track_id=index.tracks[i].track_id,
            position=i,
            score=round(float(index.popularity[i]), 6),
            reasons=[_popular_reason(index, i)],
        )
        for i in picked
    ]


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _popular_reason(index: CatalogIndex, i: int) -> str:
    genres = index.tracks[i].genres
    return f"popular in {genres[0]}" if genres else "popular in the catalog"


def _reasons(
    index: CatalogIndex,
    profile: UserProfile,
    i: int,
    contributions: dict[str, float],
    taste_words: list[str],
) -> list[str]:
    track = index.tracks[i]
    reasons: list[tuple[float, str]] = []
    if contributions["artist"] > 0.05:
        reasons.append((contributions["artist"], f"you listen to {track.artist}"))
    if contributions["genre"] > 0.05:
        liked = [g for g in track.genres if profile.genres.get(g, 0.0) > 0]
        if liked:
            best = max(liked, key=lambda g: profile.genres[g])
            reasons.append((contributions["genre"], f"you like {best}"))
    if contributions["taste"] > 0.5:
        words = " and ".join(taste_words)
        text = f"matches your {words} taste" if words else "close to your audio taste"
        reasons.append((contributions["taste"], text))
    reasons.sort(key=lambda pair: -pair[0])
    return [text for _, text in reasons] or [_popular_reason(index, i)]
