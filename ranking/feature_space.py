"""The catalog's audio features z-scored, and the taste kernel over them.

The taste kernel is `exp(−mean((z_track − z_user)²) / (2·bw²))`, z scored by the catalog mean and
standard deviation. `FeatureSpace` keeps the z-scored matrix and its squared norms so a query is one
(n, 9) matrix-vector product; `PartitionIndex` (IVF cells) answers a query from a few cells on big
catalogs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.catalog_index import CatalogIndex
from ranking.diversity import assign_to_centres, kmeans


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

    @cached_property
    def zt(self) -> np.ndarray:
        """(d, n) float32: `z` transposed, each feature's column contiguous (`kernel_at`)."""
        return np.ascontiguousarray(self.z.T)

    def with_rows(self, features: np.ndarray, mean: np.ndarray, std: np.ndarray,
                  rows: np.ndarray) -> FeatureSpace:
        """`from_features(features, mean, std)` when only `rows` changed (or were appended): with
        this space's mean and spread, only those rows are computed (the same arithmetic per row)."""
        mean = np.asarray(mean, dtype=np.float32)
        std = np.asarray(std, dtype=np.float32)
        if not (np.array_equal(mean, self.mean) and np.array_equal(std, self.std)):
            return FeatureSpace.from_features(features, mean, std)
        n0 = len(self.z)
        z = np.empty((len(features), self.z.shape[1]), dtype=np.float32)
        z[:n0] = self.z
        sq_norms = np.empty(len(features), dtype=np.float32)
        sq_norms[:n0] = self.sq_norms
        part = FeatureSpace.from_features(features[rows], mean, std)
        z[rows] = part.z
        sq_norms[rows] = part.sq_norms
        return FeatureSpace(z=z, sq_norms=sq_norms, mean=self.mean, std=self.std)

    def to_z(self, vector: Sequence[float] | np.ndarray) -> np.ndarray:
        return ((np.asarray(vector, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def kernel(self, taste: Sequence[float] | np.ndarray, bandwidth: float = 1.0) -> np.ndarray:
        """(n,) taste kernel of every track, as in `scoring.rank`."""
        zu = self.to_z(taste)
        # sq_norms − 2·z·zu + zu·zu, clipped at 0, over d, negated, over 2·bw², exp: the same
        # operations in the same order as the expression they replaced, in place (one array).
        d2 = self.z @ zu
        d2 *= 2.0
        np.subtract(self.sq_norms, d2, out=d2)
        d2 += float(zu @ zu)
        np.maximum(d2, 0.0, out=d2)
        d2 /= self.z.shape[1]
        np.negative(d2, out=d2)
        d2 /= 2.0 * bandwidth**2
        return np.exp(d2, out=d2)

    def kernel_at(
        self, taste: Sequence[float] | np.ndarray, positions: np.ndarray, bandwidth: float = 1.0
    ) -> np.ndarray:
        """(m,) float32 taste kernel of the tracks at `positions` only (candidates, a genre)."""
        zu = self.to_z(taste)
        if len(positions) == 0:
            return np.zeros(0, np.float32)
        # mean((z − zu)², axis=1) as np.mean computes it: the row sums, then divided by an intp
        # count. With 9 features the sums are taken column by column over the transposed rows, in
        # the order numpy's pairwise sum adds 9 numbers (tests/unit/test_array_paths.py pins it):
        # contiguous columns instead of a reduction along rows of 9.
        if self.z.shape[1] == 9:
            d = np.take(self.zt, positions, axis=1)
            d -= zu[:, None]
            np.square(d, out=d)
            d2 = d[0] + d[1]
            rest = d[2] + d[3]
            d2 += rest
            rest = d[4] + d[5]
            last = d[6] + d[7]
            rest += last
            d2 += rest
            d2 += d[8]
        else:
            d = np.take(self.z, positions, axis=0)
            d -= zu
            np.square(d, out=d)
            d2 = np.add.reduce(d, axis=1)
        np.true_divide(d2, np.intp(self.z.shape[1]), out=d2, casting="unsafe")
        np.negative(d2, out=d2)
        d2 /= 2.0 * bandwidth**2
        return np.exp(d2, out=d2)


TOP_SAMPLE_STRIDE = 8
"""`top_positions` on a long array first takes the n-th best of every 8th score as a threshold."""


def top_positions(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n highest finite scores, best first; ties by position.

    The n are those `np.argpartition(-scores, n - 1)[:n]` picks (when the n-th best score is tied
    with one left out, which of them it keeps is its own choice, so it decides then too)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = top_set(scores, n)
    top = top[np.lexsort((top, -scores[top]))]
    return top[np.isfinite(scores[top])].astype(np.int64)


def top_set(scores: np.ndarray, n: int) -> np.ndarray:
    """`np.argpartition(-scores, n - 1)[:n]` (1 ≤ n ≤ len): the n best positions, in no order."""
    top = _top_set(scores, n)
    return top if top is not None else np.argpartition(-scores, n - 1)[:n]


def _top_set(scores: np.ndarray, n: int) -> np.ndarray | None:
    """The n best positions (in no order) without a partition of the whole array, or None when
    that cannot be shown to be argpartition's set (then the caller partitions the whole array).

    The n-th best of a sample is at most the n-th best of the whole, so the scores at or above it
    hold the n best; partitioning those few gives the same set unless the n-th best value is tied
    across the boundary."""
    if len(scores) < 4 * TOP_SAMPLE_STRIDE * n or len(scores) < 4096:
        return None
    sample = scores[::TOP_SAMPLE_STRIDE]
    threshold = np.partition(sample, len(sample) - n)[len(sample) - n]
    if not np.isfinite(threshold):  # NaN sorts last, so a sample with NaN may give no bound
        return None
    above = np.flatnonzero(scores >= threshold)
    if len(above) < n:
        return None
    if len(above) == n:
        return above
    values = scores[above]
    best = np.argpartition(-values, n - 1)[:n]
    nth = values[best].min()
    if np.count_nonzero(values >= nth) != n:  # a tie across the boundary: argpartition's choice
        return None
    return above[best]


def excluded_mask(positions: np.ndarray, exclude: Collection[int]) -> np.ndarray:
    if not exclude:
        return np.zeros(len(positions), dtype=bool)
    return np.isin(positions, np.fromiter(exclude, dtype=np.int64))


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
    >>> exact = top_positions(space.kernel(features[7]), 20)
    >>> approx = ivf.query(features[7], n=20, n_probe=4)
    >>> int(approx.positions[0]), len(set(approx.positions) & set(exact)) >= 15
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
    changed_since_trained: int = 0
    """Rows assigned by `with_rows` since the cells were trained (a caller retrains past a share)."""

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
        labels = assign_to_centres(space.z, centroids, 4_096)
        order = np.argsort(labels, kind="stable").astype(np.int64)
        offsets = np.zeros(len(centroids) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(labels, minlength=len(centroids)))
        return cls(space, centroids, order, offsets, space.z[order], space.sq_norms[order])

    @property
    def n_cells(self) -> int:
        return len(self.centroids)

    def with_rows(self, space: FeatureSpace, rows: np.ndarray) -> PartitionIndex:
        """The same cells over `space` (this index's rows, maybe more at the end), with `rows`
        (changed or new positions) assigned to their nearest cell; the other rows stay where
        training put them."""
        labels = np.empty(len(space), dtype=np.int64)
        labels[self.order] = np.repeat(np.arange(self.n_cells), np.diff(self.offsets))
        fresh = assign_to_centres(space.z[rows], self.centroids, 4_096)
        n0 = len(self.order)
        old = rows < n0
        if np.array_equal(labels[rows[old]], fresh[old]):
            # No row moved cell: each new row goes to the end of its cell, which keeps every cell in
            # position order, as the stable sort below gives (no sort of the whole catalog).
            added, cells = rows[~old], fresh[~old]
            by_cell = np.lexsort((added, cells))
            order = np.insert(self.order, self.offsets[cells[by_cell] + 1], added[by_cell])
            offsets = self.offsets.copy()
            offsets[1:] += np.cumsum(np.bincount(cells, minlength=self.n_cells))
        else:
            labels[rows] = fresh
            order = np.argsort(labels, kind="stable").astype(np.int64)
            offsets = np.zeros(self.n_cells + 1, dtype=np.int64)
            offsets[1:] = np.cumsum(np.bincount(labels, minlength=self.n_cells))
        return PartitionIndex(space, self.centroids, order, offsets, space.z[order], space.sq_norms[order],
                              self.changed_since_trained + len(rows))

    def probe(self, taste: Sequence[float] | np.ndarray, n_probe: int = 16) -> np.ndarray:
        """Catalog positions of every row in the `n_probe` cells nearest the taste."""
        zu = self.space.to_z(taste)
        d_cells = ((self.centroids - zu) ** 2).sum(1)
        probe = np.argsort(d_cells, kind="stable")[: max(1, n_probe)]
        return np.concatenate([self.order[self.offsets[c] : self.offsets[c + 1]] for c in probe])

    def query(
        self,
        taste: Sequence[float] | np.ndarray,
        n: int = 200,
        n_probe: int = 16,
        exclude: Collection[int] = (),
        bandwidth: float = 1.0,
        source: str = "taste",
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
            scores[excluded_mask(positions, exclude)] = -np.inf
        top = top_positions(scores, n)
        # Ties by catalog position, as in the exact search.
        chosen, chosen_scores = positions[top], scores[top]
        keep = np.lexsort((chosen, -chosen_scores))
        return SourceCandidates(source, chosen[keep], chosen_scores[keep].astype(np.float32))


