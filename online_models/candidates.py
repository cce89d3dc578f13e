"""Candidate generation: a few hundred tracks worth scoring, drawn from several sources and merged.

Every source is a pure function returning a `SourceCandidates` (catalog positions, the source's own
scores, best first, and the source's name); `merge_candidates` interleaves them with per-source
quotas, drops duplicates, and remembers every source that proposed each candidate (for reasons).

| source | function | score | quota |
|---|---|---|---|
| `taste` | `taste_neighbours` (exact), `PartitionIndex.query` (cells) | taste kernel, (0, 1] | 200 |
| `taste` | `cluster_neighbours`: the same per taste cluster, in turns | kernel to its cluster | 200 |
| `co_listening` | `co_listening_neighbours` of recent positives | Σ w_seed · count / top count | 100 |
| `trending` | `trending_candidates` of `(track_id, score)` | the trending score as given | 50 |
| `popular` | `popular_candidates` | catalog popularity in [0, 1] | 50 |
| `seed` | `seed_candidates` of a `SeedProfile` (cold start) | taste kernel to the seed | 100 |

The taste kernel is the one `scoring.rank` uses: `exp(−mean((z_track − z_user)²) / (2·bw²))`, z
scored by the catalog mean and standard deviation, bw = 1. `FeatureSpace` keeps the z-scored matrix
and its squared norms so a query is one (n, 9) matrix-vector product.

>>> from schemas.tracks import Track
>>> def track(tid, artist, energy):
...     return Track(track_id=tid, title=tid.upper(), artist=artist, genres=["rock"], popularity=50,
...                  danceability=0.5, energy=energy, valence=0.5, acousticness=0.5,
...                  instrumentalness=0.0, liveness=0.1, speechiness=0.1, tempo=120, loudness=-6)
>>> index = CatalogIndex.build([track("a", "X", 0.9), track("b", "Y", 0.85), track("c", "Z", 0.2)])
>>> space = FeatureSpace.from_index(index)
>>> taste = taste_neighbours(space, index.features[0], n=2)
>>> taste.source, taste.positions.tolist()
('taste', [0, 1])
>>> co = co_listening_neighbours(index, [("a", 1.0)], {"a": [("c", 3.0), ("b", 1.0)]}, n=5)
>>> co.positions.tolist(), co.via
([2, 1], ['a', 'a'])
>>> merged = merge_candidates([taste, co], quotas={"taste": 1, "co_listening": 2})
>>> [(c.position, sorted(c.sources)) for c in merged]
[(0, ['taste']), (2, ['co_listening']), (1, ['co_listening', 'taste'])]
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from online_models.catalog_index import CatalogIndex
from online_models.diversity import _assign, kmeans
from online_models.feedback import EVENT_WEIGHTS
from schemas.events import EventType
from schemas.profile_codec import UserProfile

TASTE = "taste"
CO_LISTENING = "co_listening"
TRENDING = "trending"
POPULAR = "popular"
SEED = "seed"

DEFAULT_QUOTAS: dict[str, int] = {TASTE: 200, CO_LISTENING: 100, TRENDING: 50, POPULAR: 50, SEED: 100}
"""Most candidates each source may add to a merged list (duplicates do not use up a quota)."""
MERGE_LIMIT = 400
"""Most candidates after merging."""
SOURCE_WEIGHTS: dict[str, float] = {CO_LISTENING: 0.3, TRENDING: 0.15}
"""Score terms for being proposed by a source: weight × the source score / the source's best score
among the merged candidates (so in [0, weight]). Taste, popularity and seeds are already in the
ranking score (`RankingWeights`), so they add nothing here."""
RECENT_POSITIVES = 10
"""How many of the profile's most recent likes and completes seed co-listening."""
SEED_TRACKS_PER_ARTIST = 5
"""A declared favourite artist stands for its this-many most popular catalog tracks."""


@dataclass(frozen=True)
class SourceCandidates:
    source: str
    positions: np.ndarray
    """(m,) int64 catalog positions, best first, no repeats."""
    scores: np.ndarray
    """(m,) float32, the source's own scale, non-increasing."""
    via: list[str] | None = None
    """Co-listening: for each candidate, the seed track that contributed most."""

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class Candidate:
    position: int
    sources: dict[str, float] = field(default_factory=dict)
    """Every source that proposed this track, with that source's score for it."""
    via: str | None = None
    """The recent positive whose co-listening neighbour this is, when it is one."""


@dataclass(frozen=True)
class FeatureSpace:
    """The catalog's features z-scored (as `scoring.rank` does), ready for kernel queries."""

    z: np.ndarray
    """(n, d) float32."""
    sq_norms: np.ndarray
    """(n,) float32: Σ z² per row."""
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_index(cls, index: CatalogIndex) -> FeatureSpace:
        return cls.from_features(index.features, index.feature_mean, index.feature_std)

    @classmethod
    def from_features(cls, features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> FeatureSpace:
        mean = np.asarray(mean, dtype=np.float32)
        std = np.asarray(std, dtype=np.float32)
        z = ((np.asarray(features, dtype=np.float32) - mean) / std).astype(np.float32)
        return cls(z=z, sq_norms=(z * z).sum(1), mean=mean, std=std)

    def __len__(self) -> int:
        return len(self.z)

    def to_z(self, vector: Sequence[float] | np.ndarray) -> np.ndarray:
        return ((np.asarray(vector, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def kernel(self, taste: Sequence[float] | np.ndarray, bandwidth: float = 1.0) -> np.ndarray:
        """(n,) taste kernel of every track, as in `scoring.rank`."""
        zu = self.to_z(taste)
        d2 = np.maximum(self.sq_norms - 2.0 * (self.z @ zu) + float(zu @ zu), 0.0) / self.z.shape[1]
        return np.exp(-d2 / (2.0 * bandwidth**2))

    def kernel_at(
        self, taste: Sequence[float] | np.ndarray, positions: np.ndarray, bandwidth: float = 1.0
    ) -> np.ndarray:
        """(m,) float32 taste kernel of the tracks at `positions` only (candidates, a genre)."""
        zu = self.to_z(taste)
        z = self.z[positions]
        d2 = np.mean((z - zu) ** 2, axis=1) if len(z) else np.zeros(0, np.float32)
        return np.exp(-d2 / (2.0 * bandwidth**2)).astype(np.float32)


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n highest finite scores, best first; ties by position."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.lexsort((top, -scores[top]))]
    return top[np.isfinite(scores[top])].astype(np.int64)


def _excluded(positions: np.ndarray, exclude: Collection[int]) -> np.ndarray:
    if not exclude:
        return np.zeros(len(positions), dtype=bool)
    return np.isin(positions, np.fromiter(exclude, dtype=np.int64))


def taste_neighbours(
    space: FeatureSpace,
    taste: Sequence[float] | np.ndarray,
    n: int = DEFAULT_QUOTAS[TASTE],
    exclude: Collection[int] = (),
    bandwidth: float = 1.0,
    source: str = TASTE,
) -> SourceCandidates:
    """Exact top-n by the taste kernel over the whole catalog (excluding positions `exclude`)."""
    scores = space.kernel(taste, bandwidth)
    if exclude:
        scores[np.fromiter(exclude, dtype=np.int64)] = -np.inf
    top = _top(scores, n)
    return SourceCandidates(source, top, scores[top].astype(np.float32))


def cluster_neighbours(
    space: FeatureSpace,
    centroids_z: np.ndarray,
    n: int = DEFAULT_QUOTAS[TASTE],
    exclude: Collection[int] = (),
    bandwidth: float = 1.0,
    search: Callable[[np.ndarray, int, Collection[int]], SourceCandidates] | None = None,
) -> SourceCandidates:
    """Taste neighbours of each taste cluster (`diversity.taste_clusters`), n in all, in turns.

    A listener with two tastes has a mean taste between them; querying each cluster's centre
    keeps both in the candidates. Taken in turns (best of each cluster first), score = the
    kernel to the track's own cluster centre; source `taste`. `search(taste, n, exclude)` finds
    one centre's neighbours: the exact `taste_neighbours` by default, a `PartitionIndex` query on
    a big catalog.
    """
    centres = np.asarray(centroids_z, dtype=np.float32)
    if len(centres) == 0:
        return SourceCandidates(TASTE, np.zeros(0, np.int64), np.zeros(0, np.float32))
    if search is None:
        def search(taste: np.ndarray, k: int, skip: Collection[int]) -> SourceCandidates:
            return taste_neighbours(space, taste, k, skip, bandwidth)
    # Each cluster is asked for n (not n / k) so tracks near two centres do not leave the list short.
    per = [search(c * space.std + space.mean, n, exclude) for c in centres]
    positions: list[int] = []
    scores: list[float] = []
    seen: set[int] = set()
    for rank in range(max(n, 0)):
        for part in per:
            if rank < len(part) and int(part.positions[rank]) not in seen and len(positions) < n:
                seen.add(int(part.positions[rank]))
                positions.append(int(part.positions[rank]))
                scores.append(float(part.scores[rank]))
    return SourceCandidates(TASTE, np.array(positions, np.int64), np.array(scores, np.float32))


@dataclass(frozen=True)
class PartitionIndex:
    """Coarse partition (IVF) of the z-scored catalog: a query scores only `n_probe` cells.

    Cells come from k-means (random init from a fixed seed) trained on at most `sample` rows; every
    row then goes to its nearest cell. Rows are stored cell by cell, so a cell is one slice. The
    kernel falls with distance, so the nearest cells hold the nearest tracks; the answer is exact
    within the probed cells and approximate overall (measured recall: docs/ranking.md).

    >>> rng = np.random.default_rng(0)
    >>> features = rng.random((2_000, 9), dtype=np.float32)
    >>> space = FeatureSpace.from_features(features, features.mean(0), features.std(0))
    >>> ivf = PartitionIndex.build(space, n_cells=16)
    >>> exact = taste_neighbours(space, features[7], n=20)
    >>> approx = ivf.query(features[7], n=20, n_probe=4)
    >>> int(approx.positions[0]), len(set(approx.positions) & set(exact.positions)) >= 15
    (7, True)
    """

    space: FeatureSpace
    centroids: np.ndarray
    """(c, d) float32 cell centres in z space."""
    order: np.ndarray
    """(n,) int64 catalog positions, grouped by cell."""
    offsets: np.ndarray
    """(c + 1,) cell c holds order[offsets[c]:offsets[c + 1]]."""
    z: np.ndarray
    """(n, d) z rows in `order`."""
    sq_norms: np.ndarray

    @classmethod
    def build(
        cls,
        space: FeatureSpace,
        n_cells: int | None = None,
        sample: int = 65_536,
        iterations: int = 8,
        seed: int = 0,
    ) -> PartitionIndex:
        n = len(space)
        cells = n_cells if n_cells is not None else int(np.clip(round(np.sqrt(n)), 1, 4096))
        rng = np.random.default_rng(seed)
        train = space.z if n <= sample else space.z[np.sort(rng.choice(n, size=sample, replace=False))]
        centroids, _, _ = kmeans(train, cells, iterations=iterations, seed=seed, init="random")
        labels = _assign(space.z, centroids, 4_096)
        order = np.argsort(labels, kind="stable").astype(np.int64)
        offsets = np.zeros(len(centroids) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(labels, minlength=len(centroids)))
        return cls(space, centroids, order, offsets, space.z[order], space.sq_norms[order])

    @property
    def n_cells(self) -> int:
        return len(self.centroids)

    def probe(self, taste: Sequence[float] | np.ndarray, n_probe: int = 16) -> np.ndarray:
        """Catalog positions of every row in the `n_probe` cells nearest the taste."""
        zu = self.space.to_z(taste)
        d_cells = ((self.centroids - zu) ** 2).sum(1)
        probe = np.argsort(d_cells, kind="stable")[: max(1, n_probe)]
        return np.concatenate([self.order[self.offsets[c] : self.offsets[c + 1]] for c in probe])

    def query(
        self,
        taste: Sequence[float] | np.ndarray,
        n: int = DEFAULT_QUOTAS[TASTE],
        n_probe: int = 16,
        exclude: Collection[int] = (),
        bandwidth: float = 1.0,
        source: str = TASTE,
    ) -> SourceCandidates:
        """Top-n by the taste kernel among the rows of the `n_probe` cells nearest the taste."""
        zu = self.space.to_z(taste)
        d_cells = ((self.centroids - zu) ** 2).sum(1)
        probe = np.argsort(d_cells, kind="stable")[: max(1, n_probe)]
        slices = [np.arange(self.offsets[c], self.offsets[c + 1]) for c in probe]
        rows = np.concatenate(slices) if slices else np.zeros(0, dtype=np.int64)
        z = self.z[rows]
        d2 = np.maximum(self.sq_norms[rows] - 2.0 * (z @ zu) + float(zu @ zu), 0.0) / z.shape[1]
        scores = np.exp(-d2 / (2.0 * bandwidth**2))
        positions = self.order[rows]
        if exclude:
            scores[_excluded(positions, exclude)] = -np.inf
        top = _top(scores, n)
        # Ties by catalog position, as in the exact search.
        chosen, chosen_scores = positions[top], scores[top]
        keep = np.lexsort((chosen, -chosen_scores))
        return SourceCandidates(source, chosen[keep], chosen_scores[keep].astype(np.float32))


def recent_positives(profile: UserProfile, limit: int = RECENT_POSITIVES) -> list[tuple[str, float]]:
    """The profile's latest likes and completes, newest first, each once, with weights.

    weight = feedback weight of the event type (like 1.0, complete 0.6) × 0.9^(recency rank)."""
    out: dict[str, float] = {}
    rank = 0
    for item in reversed(profile.recent):
        if item.type not in (EventType.LIKE, EventType.COMPLETE) or item.track_id in out:
            continue
        out[item.track_id] = EVENT_WEIGHTS[item.type] * 0.9**rank
        rank += 1
        if len(out) >= limit:
            break
    return list(out.items())


def co_listening_neighbours(
    index: CatalogIndex,
    seeds: Sequence[tuple[str, float]],
    neighbours: Mapping[str, Sequence[tuple[str, float]]],
    n: int = DEFAULT_QUOTAS[CO_LISTENING],
    exclude: Collection[int] = (),
) -> SourceCandidates:
    """Tracks listened together with the seeds: score = Σ_seed weight × count / seed's top count.

    `seeds` are `(track_id, weight)` (see `recent_positives`); `neighbours` maps a track id to its
    `(neighbour_id, decayed count)` list, as the co-listening sorted sets hold it. Seeds themselves
    and tracks unknown to the catalog are left out. Ties by catalog position.
    """
    seed_ids = {track_id for track_id, _ in seeds}
    excluded = set(exclude)
    total: dict[int, float] = {}
    best_via: dict[int, tuple[float, str]] = {}
    for seed_id, weight in seeds:
        row = neighbours.get(seed_id) or ()
        top_count = max((count for _, count in row), default=0.0)
        if top_count <= 0:
            continue
        for neighbour_id, count in row:
            i = index.position.get(neighbour_id)
            if i is None or neighbour_id in seed_ids or i in excluded or count <= 0:
                continue
            share = weight * count / top_count
            total[i] = total.get(i, 0.0) + share
            if share > best_via.get(i, (0.0, ""))[0]:
                best_via[i] = (share, seed_id)
    ranked = sorted(total.items(), key=lambda pair: (-pair[1], pair[0]))[: max(n, 0)]
    return SourceCandidates(
        CO_LISTENING,
        np.array([i for i, _ in ranked], dtype=np.int64),
        np.array([s for _, s in ranked], dtype=np.float32),
        via=[best_via[i][1] for i, _ in ranked],
    )


def trending_candidates(
    index: CatalogIndex,
    trending: Sequence[tuple[str, float]],
    n: int = DEFAULT_QUOTAS[TRENDING],
    exclude: Collection[int] = (),
) -> SourceCandidates:
    """Tracks from a `(track_id, trending score)` list (`item_stats.top_trending`), in the catalog."""
    excluded = set(exclude)
    best: dict[int, float] = {}
    for track_id, score in trending:
        i = index.position.get(track_id)
        if i is not None and i not in excluded and score > best.get(i, -np.inf):
            best[i] = float(score)
    ranked = sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[: max(n, 0)]
    return SourceCandidates(
        TRENDING,
        np.array([i for i, _ in ranked], dtype=np.int64),
        np.array([s for _, s in ranked], dtype=np.float32),
    )


def popular_candidates(
    index: CatalogIndex,
    n: int = DEFAULT_QUOTAS[POPULAR],
    exclude: Collection[int] = (),
    order: np.ndarray | None = None,
) -> SourceCandidates:
    """The most popular tracks (ties by position).

    `order`: this function's answer for a large n, computed once per catalog; the first n of it not
    excluded are taken without a pass over the catalog (when enough remain)."""
    if order is not None:
        keep: list[int] = []
        for i in order.tolist():
            if i not in exclude:
                keep.append(i)
                if len(keep) >= n:
                    break
        if len(keep) >= n or len(order) >= len(index):
            positions = np.array(keep, dtype=np.int64)
            return SourceCandidates(POPULAR, positions, index.popularity[positions].astype(np.float32))
    scores = index.popularity.astype(np.float32).copy()
    if exclude:
        scores[np.fromiter(exclude, dtype=np.int64)] = -np.inf
    top = _top(scores, n)
    return SourceCandidates(POPULAR, top, scores[top])


def global_taste(index: CatalogIndex) -> np.ndarray:
    """Cold-start taste: the popularity-weighted mean of the catalog's measured features.

    Popular tracks pull the mean toward what most listeners play; with no popularity it is the
    plain mean."""
    rows = index.has_features
    if not rows.any():
        return index.feature_mean.copy()
    weights = index.popularity[rows].astype(np.float64) + 1e-6
    return (index.features[rows].T @ weights / weights.sum()).astype(np.float32)


@dataclass(frozen=True)
class SeedProfile:
    """A starting point built from declared favourites (`POST /v1/users/{id}/seed`)."""

    taste: list[float]
    """Mean scaled features of the seed tracks; empty when none has features."""
    artists: dict[str, float]
    """Each favourite artist (and each seed track's artist) → 1.0."""
    genres: dict[str, float]
    """Share of seed tracks carrying each genre, scaled so the most common is 1.0."""
    positions: list[int]
    """Catalog positions of the seed tracks, in order."""
    unknown_tracks: list[str]
    unknown_artists: list[str]

    def to_profile(self, user_id: str) -> UserProfile:
        """A version-0 profile `scoring.rank` can score with (nothing learned yet)."""
        return UserProfile(
            user_id, taste=list(self.taste), genres=dict(self.genres), artists=dict(self.artists)
        )


def seed_profile(
    index: CatalogIndex,
    track_ids: Sequence[str] = (),
    artists: Sequence[str] = (),
    per_artist: int = SEED_TRACKS_PER_ARTIST,
    artist_keys: Mapping[str, list[int]] | None = None,
) -> SeedProfile:
    """Turn declared favourites (track ids and/or artist names, case-insensitive) into a seed.

    >>> from schemas.tracks import Track
    >>> f = dict(danceability=0.5, valence=0.5, acousticness=0.5, instrumentalness=0.0,
    ...          liveness=0.1, speechiness=0.1, tempo=120.0, loudness=-6.0)
    >>> index = CatalogIndex.build([
    ...     Track(track_id="a", artist="Muse", genres=["rock"], popularity=80, energy=0.9, **f),
    ...     Track(track_id="b", artist="Muse", genres=["rock"], popularity=60, energy=0.7, **f),
    ...     Track(track_id="c", artist="Norah Jones", genres=["jazz"], popularity=70, energy=0.2, **f)])
    >>> seed = seed_profile(index, track_ids=["c", "zz"], artists=["muse", "Nobody"])
    >>> seed.positions, round(seed.taste[1], 2), seed.genres, seed.unknown_tracks, seed.unknown_artists
    ([2, 0, 1], 0.6, {'jazz': 0.5, 'rock': 1.0}, ['zz'], ['Nobody'])
    """
    positions: list[int] = []
    unknown_tracks: list[str] = []
    for track_id in track_ids:
        i = index.position.get(track_id)
        if i is None:
            unknown_tracks.append(track_id)
        elif i not in positions:
            positions.append(i)
    by_artist = artist_keys if artist_keys is not None else artist_lookup(index)
    unknown_artists: list[str] = []
    artist_scores: dict[str, float] = {}
    for name in artists:
        keys = by_artist.get(name.strip().lower())
        if not keys:
            unknown_artists.append(name)
            continue
        rows = np.flatnonzero(np.isin(index.artist_of, keys))
        rows = rows[np.lexsort((rows, -index.popularity[rows]))][: max(per_artist, 0)]
        positions.extend(int(i) for i in rows if int(i) not in positions)
        for key in keys:
            artist_scores[index.artist_names[key]] = 1.0
    for i in positions:
        artist = index.tracks[i].artist
        if artist:
            artist_scores.setdefault(artist, 1.0)
    with_features = [i for i in positions if index.has_features[i]]
    taste = index.features[with_features].mean(0).astype(np.float32).tolist() if with_features else []
    genre_counts: dict[str, int] = {}
    for i in positions:
        for genre in index.tracks[i].genres:
            genre_counts[genre] = genre_counts.get(genre, 0) + 1
    top = max(genre_counts.values(), default=1)
    genres = {g: round(c / top, 6) for g, c in sorted(genre_counts.items())}
    return SeedProfile(taste, artist_scores, genres, positions, unknown_tracks, unknown_artists)


def artist_lookup(index: CatalogIndex) -> dict[str, list[int]]:
    """Lower-cased, stripped artist name → its indices in `index.artist_names` (for seeds)."""
    by_artist: dict[str, list[int]] = {}
    for i, name in enumerate(index.artist_names):
        by_artist.setdefault(name.strip().lower(), []).append(i)
    return by_artist


def seed_candidates(
    space: FeatureSpace,
    seed: SeedProfile,
    n: int = DEFAULT_QUOTAS[SEED],
    exclude: Collection[int] = (),
) -> SourceCandidates:
    """Nearest tracks to a seed's taste (the seed tracks themselves left out)."""
    if not seed.taste:
        return SourceCandidates(SEED, np.zeros(0, np.int64), np.zeros(0, np.float32))
    return taste_neighbours(space, seed.taste, n, set(exclude) | set(seed.positions), source=SEED)


def merge_candidates(
    sources: Sequence[SourceCandidates],
    quotas: Mapping[str, int] | None = None,
    limit: int = MERGE_LIMIT,
    exclude: Collection[int] = (),
) -> list[Candidate]:
    """Interleave the sources (round-robin by rank, in the order given), each up to its quota.

    A track proposed by several sources appears once, at its earliest turn, and lists every source
    that proposed it (also those past their quota) with their scores. Duplicates and excluded
    positions do not use up a quota. A source missing from `quotas` uses `DEFAULT_QUOTAS` (or
    its full length).
    """
    quotas = dict(DEFAULT_QUOTAS if quotas is None else quotas)
    lists = [src.positions.tolist() for src in sources]
    lengths = [len(items) for items in lists]
    quota = [quotas.get(s.source, DEFAULT_QUOTAS.get(s.source, n))
             for s, n in zip(sources, lengths, strict=True)]
    cursors = [0] * len(sources)
    taken = [0] * len(sources)
    seen: set[int] = set(exclude)
    picked: list[int] = []
    while len(picked) < limit:
        progressed = False
        for s, items in enumerate(lists):
            if len(picked) >= limit:
                break
            cursor, n = cursors[s], lengths[s]
            while taken[s] < quota[s] and cursor < n:
                i = items[cursor]
                cursor += 1
                if i in seen:
                    continue
                seen.add(i)
                taken[s] += 1
                picked.append(i)
                progressed = True
                break
            cursors[s] = cursor
        if not progressed:
            break
    # Every source that proposed a picked track, with its score (and the first `via`), in source order.
    by_position = {i: Candidate(i) for i in picked}
    for src, items in zip(sources, lists, strict=True):
        name, scores, via = src.source, src.scores.tolist(), src.via
        for j, i in enumerate(items):
            candidate = by_position.get(i)
            if candidate is not None and name not in candidate.sources:
                candidate.sources[name] = scores[j]
                if via is not None and candidate.via is None:
                    candidate.via = via[j]
    merged = [by_position[i] for i in picked]
    return merged


def source_terms(
    merged: Sequence[Candidate], weights: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """Per source in `weights` (default `SOURCE_WEIGHTS`): an (m,) score term for each candidate.

    >>> merged = [Candidate(0, {"co_listening": 2.0}), Candidate(1, {"taste": 0.9}),
    ...           Candidate(2, {"co_listening": 1.0, "trending": 5.0})]
    >>> {k: [round(float(x), 3) for x in v] for k, v in source_terms(merged).items()}
    {'co_listening': [0.3, 0.0, 0.15], 'trending': [0.0, 0.0, 0.15]}
    """
    weights = SOURCE_WEIGHTS if weights is None else weights
    out: dict[str, np.ndarray] = {}
    for name, weight in weights.items():
        raw = np.fromiter((c.sources.get(name, 0.0) for c in merged), dtype=np.float64, count=len(merged))
        raw = np.maximum(raw, 0.0)
        top = raw.max() if len(raw) else 0.0
        out[name] = (weight * raw / top if top > 0 else np.zeros(len(raw))).astype(np.float32)
    return out
