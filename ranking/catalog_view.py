"""The catalog as serving keeps it per catalog version: the index, its z space, precomputed rows.

`CatalogView.build` (or `from_index`) precomputes everything a request would otherwise redo: the
z-scored feature space, the engagement model's track rows, each genre's and artist's positions, the
cold-start taste, the popular order, and on big catalogs the IVF cells of the taste search.

`CatalogView.apply` upserts tracks into a new view without a rebuild and without touching the old
one (requests holding it keep a whole catalog). **Row order**: views of one `epoch` agree on the
position of every track they share, and a later view only appends, so an array aligned to one view's
rows is extended, not rebuilt, for the next: rows `len(old):len(new)` are the new tracks. `generation`
grows by one per change; a new `epoch` (only after a rebuild that could not keep the order, e.g. a
track deleted from Redis) means realign by track id.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

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
from ranking.catalog_index import CatalogIndex, IndexDelta
from ranking.config import DEFAULT_QUOTAS
from ranking.feature_space import FeatureSpace, PartitionIndex, top_positions

POPULAR_KEPT = 2_000
"""Popular tracks kept per catalog view for the `popular` source (it excludes from these)."""
PARTITION_MIN_TRACKS = 200_000
"""Above this many tracks the taste source searches coarse cells (`PartitionIndex`), not every row."""
RETRAIN_SHARE = 0.2
"""`apply` retrains the cells once this share of the catalog's rows changed since they were trained."""


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
    generation: int = 0
    """Changes applied since the first view of this lineage (`apply` adds one, a rebuild too)."""
    epoch: int = 0
    """Row-order lineage: views of one epoch keep each shared track at one position."""
    partition_min_tracks: int = PARTITION_MIN_TRACKS

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
                   genre_rows, artist_rows, global_taste(index), popular_order(index),
                   partition_min_tracks=partition_min_tracks)

    def __len__(self) -> int:
        return len(self.index)

    def apply(self, changes: Sequence) -> CatalogView:
        """A new view with `changes` (tracks) upserted; `self` if none differs. Rows keep their
        positions, new tracks are appended (see the module docstring).

        Everything per track is recomputed only for the changed rows; the catalog-wide parts (z
        space, median popularity, cold-start taste, popular order) are vectorised recomputations,
        so the result equals `from_index` over the same tracks in the same order (tested), up to
        the column order of genre and artist names, which no score depends on. Exceptions: when a
        change leaves a genre or artist with no track, the view is rebuilt from its tracks in
        memory (same order), so no empty name lingers; and on big catalogs the IVF cells are kept
        and changed rows join their nearest cell (approximate by design; retrained once the rows
        changed since training reach `RETRAIN_SHARE` of the catalog)."""
        delta = self.index.with_tracks(changes)
        if delta is None:
            return self
        index = delta.index
        genre_rows = _moved_rows(self.genre_rows, _genre_moves(delta))
        artist_rows = _moved_rows(self.artist_rows, _artist_moves(delta))
        if genre_rows is None or artist_rows is None or _lost_blank_artist(delta):
            rebuilt = CatalogView.from_index(CatalogIndex.build(index.tracks), self.partition_min_tracks)
            return replace(rebuilt, generation=self.generation + 1, epoch=self.epoch)
        rows = delta.rows
        grew = len(index) > len(self)
        x_rows = track_rows(index.features[rows], index.has_features[rows],
                            [bool(index.tracks[i].features_predicted) for i in rows.tolist()],
                            index.genre_matrix[rows], index.genre_names)
        if not grew and np.array_equal(self.track_x[rows], x_rows):
            track_x = self.track_x  # shared: neither view modifies it
        else:
            track_x = np.zeros((len(index), self.track_x.shape[1]), dtype=np.float32)
            track_x[: delta.appended_from] = self.track_x
            track_x[rows] = x_rows
        if index.features is self.index.features:
            space = self.space
        else:
            space = self.space.with_rows(index.features, index.feature_mean, index.feature_std, rows)
        if self.partition is not None:
            partition: PartitionIndex | None = (
                self.partition if space is self.space else self.partition.with_rows(space, rows))
            if partition.changed_since_trained >= RETRAIN_SHARE * len(index):
                partition = PartitionIndex.build(space)
        else:
            partition = PartitionIndex.build(space) if len(index) >= self.partition_min_tracks else None
        artist_keys = dict(self.artist_keys)
        for a in range(len(self.index.artist_names), len(index.artist_names)):
            name = index.artist_names[a].strip().lower()
            artist_keys[name] = [*artist_keys.get(name, ()), a]
        return CatalogView(index, space, track_x, partition, artist_keys, genre_rows, artist_rows,
                           global_taste(index), popular_order(index), generation=self.generation + 1,
                           epoch=self.epoch, partition_min_tracks=self.partition_min_tracks)

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
    return track_rows(index.features, index.has_features, [bool(t.features_predicted) for t in index.tracks],
                      index.genre_matrix, index.genre_names)


def track_rows(features: np.ndarray, has_features: np.ndarray, predicted: Sequence[bool],
               genre_matrix: np.ndarray, genre_names: Sequence[str]) -> np.ndarray:
    """`catalog_track_matrix` of some rows: each row depends on its own track only."""
    x = np.zeros((len(features), TRACK_DIM), dtype=np.float32)
    audio = features - np.float32(0.5)
    x[:, : audio.shape[1]] = np.where(has_features[:, None], audio, 0.0)
    x[:, MISSING_INDEX] = ~has_features
    x[:, PREDICTED_INDEX] = predicted
    if genre_names:
        member = genre_matrix > 0
        share = 1.0 / np.sqrt(np.maximum(member.sum(1, keepdims=True), 1))
        buckets = np.zeros((len(genre_names), GENRE_BUCKETS), dtype=np.float32)
        for g, name in enumerate(genre_names):
            buckets[g, stable_bucket("genre", name, GENRE_BUCKETS)] = 1.0
        x[:, GENRE_OFFSET : GENRE_OFFSET + GENRE_BUCKETS] = (member * share).astype(np.float32) @ buckets
    return x


Moves = dict[str, tuple[list[int], list[int]]]
"""Name → (positions that left it, positions that joined it)."""


def _genre_moves(delta: IndexDelta) -> Moves:
    moves: Moves = {}
    tracks = delta.index.tracks
    for at, old in delta.replaced:
        before, after = set(old.genres), set(tracks[at].genres)
        for name in before - after:
            moves.setdefault(name, ([], []))[0].append(at)
        for name in after - before:
            moves.setdefault(name, ([], []))[1].append(at)
    for at in range(delta.appended_from, len(tracks)):
        for name in set(tracks[at].genres):
            moves.setdefault(name, ([], []))[1].append(at)
    return moves


def _artist_moves(delta: IndexDelta) -> Moves:
    moves: Moves = {}
    tracks = delta.index.tracks
    for at, old in delta.replaced:
        if old.artist != tracks[at].artist:
            if old.artist:
                moves.setdefault(old.artist, ([], []))[0].append(at)
            if tracks[at].artist:
                moves.setdefault(tracks[at].artist, ([], []))[1].append(at)
    for at in range(delta.appended_from, len(tracks)):
        if tracks[at].artist:
            moves.setdefault(tracks[at].artist, ([], []))[1].append(at)
    return moves


def _moved_rows(rows: Mapping[str, np.ndarray], moves: Moves) -> dict[str, np.ndarray] | None:
    """`rows` (name → ascending positions) after `moves`; None when a name is left with no row."""
    out = dict(rows)
    empty = np.zeros(0, np.int64)
    for name, (left, joined) in moves.items():
        current = out.get(name, empty)
        if left:
            current = np.setdiff1d(current, np.array(left, np.int64), assume_unique=True)
            if not len(current) and not joined:
                return None
        if joined:
            added = np.sort(np.array(joined, np.int64))
            if not len(current) or added[0] > current[-1]:
                current = np.concatenate([current, added])
            else:
                current = np.union1d(current, added)
        out[name] = current.astype(np.int64)
    return out


def _lost_blank_artist(delta: IndexDelta) -> bool:
    """A replaced track was the last one without an artist name (`artist_rows` leaves "" out)."""
    if not any(old.artist == "" and delta.index.tracks[at].artist != "" for at, old in delta.replaced):
        return False
    blank = delta.index.artist_position[""]
    return not bool(np.any(delta.index.artist_of == blank))


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
