"""The learned ranker's features: one function for the flow (training) and the API (scoring).

The flow learns a global ranker on every event with a clear outcome (`flows.ranker_step`): the
features of the event's track as the listener's profile stood just *before* the event, the label
its outcome (complete or like 1, skip or dislike 0, weighted by the feedback's strength, so an early
skip says more than a late one). The API computes the very same features for its candidates with
the same function and scores them with the learned weights (`ranking.scoring`).

| feature | meaning |
|---|---|
| `taste` | exp(−mean(((x − taste) / FEATURE_SCALE)²) / 2): audio similarity to the taste vector |
| `genre` | mean of tanh(affinity / scale) over the track's genres |
| `artist` | tanh(affinity / scale) of the track's artist |
| `popularity` | catalog popularity in [0, 1] (the stream's popularity is a hand-weighted term) |
| `engagement` | 2·(p − ½), p = the listener's own engagement model's P(like or complete) |

`prior_weights` maps `RankingConfig`'s hand weights onto these features: the ranker's cold start,
and the baseline its progressive AUC is compared against.

>>> from schemas.profile_codec import UserProfile
>>> profile = UserProfile("u", taste=[0.5] * 9, genres={"rock": 2.0}, artists={"Muse": 2.0})
>>> x = features(profile, np.full((1, 9), 0.5, np.float32), [("rock",)], ["Muse"], np.array([0.6]),
...              np.array([0.5]))
>>> dict(zip(FEATURES, [round(float(v), 3) for v in x[0]]))
{'taste': 1.0, 'genre': 0.762, 'artist': 0.762, 'popularity': 0.6, 'engagement': 0.0}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import sub, truediv

import numpy as np

from ranking.config import RANKING_CONFIG, RankingConfig
from schemas.profile_codec import UserProfile

FEATURES: tuple[str, ...] = ("taste", "genre", "artist", "popularity", "engagement")

FEATURE_SCALE = np.array([0.15, 0.18, 0.23, 0.25, 0.22, 0.12, 0.08, 0.12, 0.05], dtype=np.float32)
"""Spread of each scaled audio feature (`AUDIO_FEATURES` order) in a typical catalog: fixed, so the
flow and the API compute the same taste feature without sharing a catalog's statistics."""


def features(
    profile: UserProfile | None,
    track_x: np.ndarray,
    genres: Sequence[Sequence[str]],
    artists: Sequence[str | None],
    popularity: np.ndarray,
    engagement_p: np.ndarray | None,
    config: RankingConfig = RANKING_CONFIG,
) -> np.ndarray:
    """(m, len(FEATURES)) float32 of m tracks: `track_x` (m, 9) scaled audio features (NaN rows for
    tracks without features), their genres, artists, popularity in [0, 1], and the listener's
    engagement probability per track (None: 0.5)."""
    m = len(track_x)
    genre_fit = np.zeros(m, dtype=np.float32)
    artist_fit = np.zeros(m, dtype=np.float32)
    if profile is not None:
        scale = config.affinity_scale
        for j in range(m):
            names = genres[j]
            if names and profile.genres:
                genre_fit[j] = sum(math.tanh(profile.genres.get(g, 0.0) / scale) for g in names) / len(names)
            artist = artists[j]
            if artist and artist in profile.artists:
                artist_fit[j] = math.tanh(profile.artists[artist] / scale)
    return assemble(profile, track_x, genre_fit, artist_fit, popularity, engagement_p)


def assemble(
    profile: UserProfile | None, track_x: np.ndarray, genre_fit: np.ndarray, artist_fit: np.ndarray,
    popularity: np.ndarray, engagement_p: np.ndarray | None,
) -> np.ndarray:
    """`features` from the genre and artist fits already computed (serving has them as the raw genre
    and artist terms: `genre_matrix @ tanh(affinity / scale)` is the same mean, rows summing to 1)."""
    m = len(track_x)
    out = np.zeros((m, len(FEATURES)), dtype=np.float32)
    if m == 0:
        return out
    if profile is not None and profile.taste:
        d = (np.asarray(track_x, np.float32) - np.asarray(profile.taste, np.float32)) / FEATURE_SCALE
        out[:, 0] = np.nan_to_num(np.exp(-np.mean(d * d, axis=1) / 2.0), nan=0.0)
    out[:, 1] = genre_fit
    out[:, 2] = artist_fit
    out[:, 3] = np.asarray(popularity, np.float32)
    if engagement_p is not None:
        out[:, 4] = 2.0 * (np.asarray(engagement_p, np.float32) - 0.5)
    return out


def features_one(
    profile: UserProfile, track_vector: Sequence[float] | None, genres: Sequence[str], artist: str | None,
    popularity: float, engagement_p: float, config: RankingConfig = RANKING_CONFIG,
) -> tuple[float, ...]:
    """`features` of one track, in plain Python (the flow's per-event path; equal to `features`)."""
    taste = 0.0
    profile_taste = profile.taste
    if profile_taste and track_vector is not None:
        if len(track_vector) != len(_SCALE) or len(profile_taste) != len(_SCALE):
            raise ValueError("a taste and a track vector have one value per audio feature")
        # Each (x − t) / s made in C, then squared and added in order as before.
        total = 0.0
        for d in map(truediv, map(sub, track_vector, profile_taste), _SCALE):
            total += d * d
        taste = math.exp(-total / len(_SCALE) / 2.0)
    scale = config.affinity_scale
    affinities = profile.genres
    if genres and affinities:
        tanh, get = math.tanh, affinities.get
        genre = sum(tanh(get(g, 0.0) / scale) for g in genres) / len(genres)
    else:
        genre = 0.0
    artist_score = 0.0
    if artist:
        affinity = profile.artists.get(artist)
        if affinity is not None:
            artist_score = math.tanh(affinity / scale)
    return (taste, genre, artist_score, popularity, 2.0 * (engagement_p - 0.5))


_SCALE = tuple(float(s) for s in FEATURE_SCALE)


def prior_weights(config: RankingConfig = RANKING_CONFIG) -> np.ndarray:
    """The hand weights of `RankingConfig` on `FEATURES` (the cold ranker). The artist feature gets the
    liked side's weight (`artist`): one linear weight cannot hold both sides, so the prior that the
    learned ranker is compared against ignores serving's disliked side (`artist_disliked`)."""
    return np.array([config.taste, config.genre, config.artist, config.popularity, config.engagement],
                    dtype=np.float32)
