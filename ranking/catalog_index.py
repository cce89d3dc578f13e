"""The catalog as matrices, for scoring every track against a profile in one numpy pass.

`CatalogIndex.with_tracks` upserts tracks without a rebuild: changed rows are rewritten in a copy,
new tracks are appended, so the rows of existing tracks keep their positions.

>>> from schemas.tracks import Track
>>> f = dict(danceability=0.5, energy=0.5, valence=0.5, acousticness=0.5,
...          instrumentalness=0.0, liveness=0.1, speechiness=0.1, tempo=120.0, loudness=-6.0)
>>> index = CatalogIndex.build([Track(track_id="a", genres=["rock"], popularity=50, **f),
...                             Track(track_id="b", genres=["pop"], popularity=80, **f)])
>>> len(index), index.position["b"], index.genre_names
(2, 1, ['rock', 'pop'])
>>> grown = index.with_tracks([Track(track_id="c", genres=["jazz"], **f)]).index
>>> len(grown), grown.position["c"], grown.genre_names, len(index)
(3, 2, ['rock', 'pop', 'jazz'], 2)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, Track


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
    popularity_known: np.ndarray | None = None
    """(n,) bool: the track has a popularity (the others hold the median of those that do)."""

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
        features[:], has_features[:] = feature_rows(items)
        for i, track in enumerate(items):
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
            popularity_known=known,
        )

    def with_tracks(self, changes: Iterable[Track]) -> IndexDelta | None:
        """This index with `changes` upserted (the last of an id wins), or None when none differs.

        Equal to `build` over the same tracks in the same order (tested), except that the genre and
        artist vocabularies only grow: a name an in-place update brings in is appended, not placed
        at its first row, and a name no track carries any more keeps its entry (`IndexDelta`
        reports both, so a caller can rebuild instead). Rows of existing tracks keep their positions;
        new tracks are appended in first-seen order. Nothing of `self` is modified."""
        by_id = {track.track_id: track for track in changes}
        replaced: list[tuple[int, Track]] = []
        appended: list[Track] = []
        for track_id, track in by_id.items():
            at = self.position.get(track_id)
            if at is None:
                appended.append(track)
            elif self.tracks[at] != track:
                replaced.append((at, self.tracks[at]))
        if not replaced and not appended:
            return None
        replaced.sort(key=lambda item: item[0])
        n0, n = len(self), len(self) + len(appended)
        tracks = list(self.tracks)
        for at, _ in replaced:
            tracks[at] = by_id[tracks[at].track_id]
        tracks.extend(appended)
        position = self.position
        if appended:
            position = dict(position)
            position.update((track.track_id, n0 + j) for j, track in enumerate(appended))
        rows = np.array([at for at, _ in replaced] + list(range(n0, n)), dtype=np.int64)

        genre_pos, artist_pos = dict(self.genre_position), dict(self.artist_position)
        changed = [tracks[i] for i in rows.tolist()]
        row_features, row_has = feature_rows(changed)
        row_known = np.array([t.popularity is not None for t in changed], dtype=bool)
        row_popularity = np.array([t.popularity / 100.0 if t.popularity is not None else 0.0
                                   for t in changed], dtype=np.float32)
        cells: list[tuple[int, int]] = []
        row_artist = np.zeros(len(rows), dtype=np.int32)
        for r, track in enumerate(changed):
            cells.extend((r, genre_pos.setdefault(genre, len(genre_pos))) for genre in track.genres)
            row_artist[r] = artist_pos.setdefault(track.artist, len(artist_pos))
        block = np.zeros((len(rows), len(genre_pos)), dtype=np.float32)
        if cells:
            r_idx, c_idx = zip(*cells, strict=True)
            block[list(r_idx), list(c_idx)] = 1.0
        block /= np.maximum(block.sum(axis=1, keepdims=True), 1.0)

        # Copy on write: an array none of whose rows changed is shared with `self` (never modified
        # after it is built); the others are copied with the new rows, so `self` stays whole.
        same_features = n == n0 and np.array_equal(self.has_features[rows], row_has) and np.array_equal(
            self.features[rows][row_has], row_features[row_has])
        if same_features:
            features, has_features = self.features, self.has_features
            mean, std = self.feature_mean, self.feature_std
        else:
            features = _grown(self.features, n)
            features[rows] = row_features
            has_features = _grown(self.has_features, n)
            has_features[rows] = row_has
            # The catalog-wide parts (mean, spread) as `build` computes them.
            if has_features.any():
                mean = features[has_features].mean(axis=0)
                std = features[has_features].std(axis=0)
            else:
                mean = np.full(features.shape[1], 0.5, dtype=np.float32)
                std = np.zeros(features.shape[1], dtype=np.float32)
            features[~has_features] = mean
            mean, std = mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)
        known = _grown(self._known(), n)
        known[rows] = row_known
        popularity = _grown(self.popularity, n)
        popularity[rows] = row_popularity
        popularity[~known] = float(np.median(popularity[known])) if known.any() else 0.5
        g0 = self.genre_matrix.shape[1]
        if n == n0 and len(genre_pos) == g0 and np.array_equal(self.genre_matrix[rows], block):
            genre_matrix = self.genre_matrix
        else:
            genre_matrix = np.zeros((n, len(genre_pos)), dtype=np.float32)
            genre_matrix[:n0, :g0] = self.genre_matrix
            genre_matrix[rows] = block
        if n == n0 and np.array_equal(self.artist_of[rows], row_artist):
            artist_of = self.artist_of
        else:
            artist_of = _grown(self.artist_of, n)
            artist_of[rows] = row_artist
        index = CatalogIndex(
            tracks=tracks, position=position, features=features, has_features=has_features,
            feature_mean=mean, feature_std=std,
            popularity=popularity, genre_names=list(genre_pos), genre_matrix=genre_matrix,
            artist_names=list(artist_pos), genre_position=genre_pos, artist_position=artist_pos,
            artist_of=artist_of, popularity_known=known)
        return IndexDelta(index, rows, n0, replaced)

    def _known(self) -> np.ndarray:
        if self.popularity_known is not None:
            return self.popularity_known
        return np.array([t.popularity is not None for t in self.tracks], dtype=bool)


def _grown(array: np.ndarray, n: int) -> np.ndarray:
    """A copy of `array` with n rows: its own, then zeros."""
    out = np.zeros((n, *array.shape[1:]), dtype=array.dtype)
    out[: len(array)] = array
    return out


_RAW_FEATURES = operator.attrgetter(*AUDIO_FEATURES)
_LOW = np.array([FEATURE_RANGES[name][0] for name in AUDIO_FEATURES])
_HIGH = np.array([FEATURE_RANGES[name][1] for name in AUDIO_FEATURES])


def feature_rows(tracks: Sequence[Track]) -> tuple[np.ndarray, np.ndarray]:
    """(n, 9) float32 `Track.feature_vector()` of each track (0 without features), and (n,) bool:
    whether it has them. The same float64 arithmetic as `normalise_feature`, vectorised."""
    raw = np.array([[math.nan if v is None else v for v in _RAW_FEATURES(t)] for t in tracks],
                   dtype=np.float64).reshape(len(tracks), len(AUDIO_FEATURES))
    has = ~np.isnan(raw[:, 0])
    scaled = np.minimum(1.0, np.maximum(0.0, (raw - _LOW) / (_HIGH - _LOW)))
    return np.where(has[:, None], scaled, 0.0).astype(np.float32), has


@dataclass(frozen=True)
class IndexDelta:
    """What `CatalogIndex.with_tracks` changed."""

    index: CatalogIndex
    rows: np.ndarray
    """int64 positions rewritten or appended: the replaced ones ascending, then the appended."""
    appended_from: int
    """The previous length: rows from here on are new."""
    replaced: list[tuple[int, Track]]
    """(position, the track it held before) of each row rewritten in place."""


def ordered_like(previous: CatalogIndex, tracks: Sequence[Track]) -> tuple[list[Track], bool]:
    """`tracks` with every id of `previous` at its old position and the rest after, in their order;
    and whether that held (False when an id of `previous` is missing: then `tracks` as given)."""
    by_id = {track.track_id: track for track in tracks}
    if any(track_id not in by_id for track_id in previous.position):
        return list(by_id.values()), False
    known = [by_id[track.track_id] for track in previous.tracks]
    return known + [t for track_id, t in by_id.items() if track_id not in previous.position], True
