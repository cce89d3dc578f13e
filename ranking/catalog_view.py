"""The catalog as serving keeps it per catalog version: the index, its z space, precomputed rows.

`CatalogView.build` (or `from_index`) precomputes everything a request would otherwise redo: the
z-scored feature space, the engagement model's track rows, each genre's and artist's positions, the
cold-start taste, the popular order, and on big catalogs the IVF cells of the taste search.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from online_models.context_features import (
    GENRE_BUCKETS,
    GENRE_OFFSET,
    MISSING_INDEX,
    PREDICTED_INDEX,
    TRACK_DIM,
    stable_bucket,
)
from ranking.candidates import SourceCandidates
from ranking.catalog_index import CatalogIndex
from ranking.config import DEFAULT_QUOTAS
from ranking.feature_space import FeatureSpace, PartitionIndex, top_positions

POPULAR_KEPT = 2_000
"""Popular tracks kept per catalog view for the `popular` source (it excludes from these)."""
PARTITION_MIN_TRACKS = 200_000
"""Above this many tracks the taste source searches coarse cells (`PartitionIndex`), not every row."""


@dataclass(frozen=True)
class CatalogView:
    """Everything serving keeps per catalog version: the index, its z space, the model's track rows."""

    index: CatalogIndex
    space: FeatureSpace
    track_x: np.ndarray
    """(n, TRACK_DIM) float32: the track part of the engagement model's features."""
    partition: PartitionIndex | None = None
    artist_keys: Mapping[str, list[int]] = field(default_factory=dict)
    """Lower-cased artist name → indices into `index.artist_names` (for seeds)."""
    genre_rows: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Genre → catalog positions of its tracks (the `genre` source searches only these)."""
    artist_rows: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Artist name → catalog positions of their tracks (the `artist` source)."""
    global_taste: np.ndarray = field(default_factory=lambda: np.full(9, 0.5, np.float32))
    """`global_taste` of the catalog: the cold-start taste, computed once."""
    popular_order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """The most popular `POPULAR_KEPT` positions, best first (ties by position), computed once."""

    @classmethod
    def build(cls, tracks: Sequence, partition_min_tracks: int = PARTITION_MIN_TRACKS) -> CatalogView:
        return cls.from_index(CatalogIndex.build(tracks), partition_min_tracks)

    @classmethod
    def from_index(cls, index: CatalogIndex, partition_min_tracks: int = PARTITION_MIN_TRACKS) -> CatalogView:
        space = FeatureSpace.from_index(index)
        partition = PartitionIndex.build(space) if len(index) >= partition_min_tracks else None
        genre_rows = {}
        if index.genre_names:
            rows, cols = np.nonzero(index.genre_matrix)
            order = np.argsort(cols, kind="stable")
            rows, cols = rows[order], cols[order]
            bounds = np.searchsorted(cols, np.arange(len(index.genre_names) + 1))
            genre_rows = {name: rows[bounds[g] : bounds[g + 1]].astype(np.int64)
                          for g, name in enumerate(index.genre_names)}
        order = np.argsort(index.artist_of, kind="stable")
        bounds = np.searchsorted(index.artist_of[order], np.arange(len(index.artist_names) + 1))
        artist_rows = {name: order[bounds[a] : bounds[a + 1]].astype(np.int64)
                       for a, name in enumerate(index.artist_names) if name}
        return cls(index, space, catalog_track_matrix(index), partition, artist_lookup(index),
                   genre_rows, artist_rows, global_taste(index), popular_order(index))

    def __len__(self) -> int:
        return len(self.index)

    def taste_source(
        self, taste: Sequence[float] | np.ndarray, n: int, exclude: Collection[int], source: str = "taste"
    ) -> SourceCandidates:
        if self.partition is not None:
            return self.partition.query(taste, n, exclude=exclude, source=source)
        return taste_neighbours(self.space, taste, n, exclude, source=source)


def catalog_track_matrix(index: CatalogIndex) -> np.ndarray:
    """`context_features.track_matrix` of the whole catalog, vectorised (1M tracks in about a second).

    Equal to `track_matrix(index.tracks)` (tested): centred audio features (0 when missing), the
    missing and predicted flags, and each genre's 1/√n share in its hashed bucket."""
    n = len(index)
    x = np.zeros((n, TRACK_DIM), dtype=np.float32)
    audio = index.features - np.float32(0.5)
    x[:, : audio.shape[1]] = np.where(index.has_features[:, None], audio, 0.0)
    x[:, MISSING_INDEX] = ~index.has_features
    x[:, PREDICTED_INDEX] = [bool(t.features_predicted) for t in index.tracks]
    if index.genre_names:
        member = index.genre_matrix > 0
        share = 1.0 / np.sqrt(np.maximum(member.sum(1, keepdims=True), 1))
        buckets = np.zeros((len(index.genre_names), GENRE_BUCKETS), dtype=np.float32)
        for g, name in enumerate(index.genre_names):
            buckets[g, stable_bucket("genre", name, GENRE_BUCKETS)] = 1.0
        x[:, GENRE_OFFSET : GENRE_OFFSET + GENRE_BUCKETS] = (member * share).astype(np.float32) @ buckets
    return x


def global_taste(index: CatalogIndex) -> np.ndarray:
    """Cold-start taste: the popularity-weighted mean of the catalog's measured features.

    Popular tracks pull the mean toward what most listeners play; with no popularity it is the
    plain mean."""
    rows = index.has_features
    if not rows.any():
        return index.feature_mean.copy()
    weights = index.popularity[rows].astype(np.float64) + 1e-6
    return (index.features[rows].T @ weights / weights.sum()).astype(np.float32)


def artist_lookup(index: CatalogIndex) -> dict[str, list[int]]:
    """Lower-cased, stripped artist name → its indices in `index.artist_names` (for seeds)."""
    by_artist: dict[str, list[int]] = {}
    for i, name in enumerate(index.artist_names):
        by_artist.setdefault(name.strip().lower(), []).append(i)
    return by_artist


def popular_order(index: CatalogIndex, n: int = POPULAR_KEPT) -> np.ndarray:
    """The n most popular positions, best first (ties by position)."""
    return top_positions(index.popularity.astype(np.float32), n)


def taste_neighbours(
    space: FeatureSpace,
    taste: Sequence[float] | np.ndarray,
    n: int = DEFAULT_QUOTAS["taste"],
    exclude: Collection[int] = (),
    bandwidth: float = 1.0,
    source: str = "taste",
) -> SourceCandidates:
    """Exact top-n by the taste kernel over the whole catalog (excluding positions `exclude`)."""
    scores = space.kernel(taste, bandwidth)
    if exclude:
        scores[np.fromiter(exclude, dtype=np.int64)] = -np.inf
    top = top_positions(scores, n)
    return SourceCandidates(source, top, scores[top].astype(np.float32))
