"""The catalog as matrices, for scoring every track against a profile in one numpy pass.

>>> from schemas.tracks import Track
>>> f = dict(danceability=0.5, energy=0.5, valence=0.5, acousticness=0.5,
...          instrumentalness=0.0, liveness=0.1, speechiness=0.1, tempo=120.0, loudness=-6.0)
>>> index = CatalogIndex.build([Track(track_id="a", genres=["rock"], popularity=50, **f),
...                             Track(track_id="b", genres=["pop"], popularity=80, **f)])
>>> len(index), index.position["b"], index.genre_names
(2, 1, ['rock', 'pop'])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from schemas.tracks import AUDIO_FEATURES, Track


@dataclass(frozen=True)
class CatalogIndex:
    tracks: list[Track]
    position: dict[str, int]
    features: np.ndarray
    """(n, 9) float32 in [0, 1]; tracks without features hold the catalog mean."""
    has_features: np.ndarray
    """(n,) bool."""
    feature_mean: np.ndarray
    feature_std: np.ndarray
    popularity: np.ndarray
    """(n,) float32 in [0, 1]; unknown popularity counts as the median."""
    genre_names: list[str]
    genre_matrix: np.ndarray
    """(n, g) float32: 1 where the track carries the genre, rows scaled to sum to 1."""
    artist_names: list[str]
    genre_position: dict[str, int]
    """Genre → its column in `genre_matrix`."""
    artist_position: dict[str, int]
    """Artist → its index in `artist_names`."""
    artist_of: np.ndarray
    """(n,) int32: index into `artist_names`."""

    def __len__(self) -> int:
        return len(self.tracks)

    @classmethod
    def build(cls, tracks: Iterable[Track]) -> CatalogIndex:
        by_id = {track.track_id: track for track in tracks}
        items = list(by_id.values())
        n = len(items)
        features = np.zeros((n, len(AUDIO_FEATURES)), dtype=np.float32)
        has_features = np.zeros(n, dtype=bool)
        popularity = np.full(n, np.nan, dtype=np.float32)
        genre_pos: dict[str, int] = {}
        artist_pos: dict[str, int] = {}
        artist_of = np.zeros(n, dtype=np.int32)
        rows, cols = [], []
        for i, track in enumerate(items):
            vector = track.feature_vector()
            if vector is not None:
                features[i] = vector
                has_features[i] = True
            if track.popularity is not None:
                popularity[i] = track.popularity / 100.0
            for genre in track.genres:
                rows.append(i)
                cols.append(genre_pos.setdefault(genre, len(genre_pos)))
            artist_of[i] = artist_pos.setdefault(track.artist, len(artist_pos))
        if has_features.any():
            mean = features[has_features].mean(axis=0)
            std = features[has_features].std(axis=0)
        else:
            mean = np.full(len(AUDIO_FEATURES), 0.5, dtype=np.float32)
            std = np.zeros(len(AUDIO_FEATURES), dtype=np.float32)
        features[~has_features] = mean
        std = np.maximum(std, 1e-3).astype(np.float32)
        known = ~np.isnan(popularity)
        popularity[~known] = float(np.median(popularity[known])) if known.any() else 0.5
        genre_matrix = np.zeros((n, len(genre_pos)), dtype=np.float32)
        genre_matrix[rows, cols] = 1.0
        counts = genre_matrix.sum(axis=1, keepdims=True)
        genre_matrix /= np.maximum(counts, 1.0)
        return cls(
            tracks=items,
            position={track.track_id: i for i, track in enumerate(items)},
            features=features,
            has_features=has_features,
            feature_mean=mean.astype(np.float32),
            feature_std=std,
            popularity=popularity,
            genre_names=list(genre_pos),
            genre_matrix=genre_matrix,
            artist_names=list(artist_pos),
            genre_position=genre_pos,
            artist_position=artist_pos,
            artist_of=artist_of,
        )
