"""Diversify a ranked candidate list: cover the listener's taste clusters, cap artists, trade off.

Three mechanisms, applied in one greedy pass over the candidates (`diversify`):

1. **Taste clusters.** A listener who likes both jazz ballads and loud rock has two tastes, and a
   single taste vector sits between them. `taste_clusters` runs k-means over the z-scored feature
   vectors of the liked tracks (k-means++ seeding from a fixed seed, so deterministic), with the
   smallest k ≤ `max_k` (4) after which one more cluster no longer cuts the within-cluster sum of
   squares by `min_gain` (30 %), and every cluster holding at least `min_size` (2) liked tracks.
   Each candidate belongs to the cluster of its nearest centroid.
2. **Artist cap.** At most `max_per_artist` (2) picks by one artist: a hard rule, so the list can
   come out shorter than k when the candidates run out.
3. **MMR.** Each slot goes to the candidate with the highest

       rel(i) − λ · max_{j picked} sim(i, j) + λ · cover(i)

   where `rel` is the relevance min-max scaled to [0, 1] over the candidates, `λ` is the
   `diversity` parameter in [0, 1], `sim` is the taste kernel of `ranking.scoring`
   (exp(−mean squared z-distance / 2), in (0, 1]) and `cover(i)` is 1 when i's cluster has the
   fewest picks among clusters that still have eligible candidates (so clusters take turns), else 0.
   Ties go to the more relevant, then the earlier candidate. λ = 0 is the relevance order (with the
   artist cap); λ = 1 alternates clusters and avoids near-duplicates.

>>> import numpy as np
>>> z = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.1], [5.0, 5.0]], dtype=np.float32)
>>> relevance = np.array([1.0, 0.9, 0.8, 0.5])
>>> artists = np.array([0, 1, 2, 3])
>>> diversify(relevance, z, artists, k=2, diversity=0.0)
[0, 1]
>>> diversify(relevance, z, artists, k=2, diversity=1.0)   # the far track gets the second slot
[0, 3]
>>> clusters = taste_clusters(np.array([[0, 0], [0.1, 0], [5, 5], [5.1, 5]], dtype=np.float32))
>>> clusters.k, clusters.assign(z).tolist()
(2, [0, 0, 0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ranking.config import RANKING_CONFIG

MAX_CLUSTERS = 4
MIN_CLUSTER_SIZE = 2
MIN_CLUSTER_GAIN = 0.3
"""A further cluster must cut the within-cluster sum of squares by at least this fraction."""
KMEANS_SEED = 0


def _sq_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n, c) squared Euclidean distances, clipped at 0 (float rounding)."""
    d2 = (x * x).sum(1)[:, None] - 2.0 * (x @ centres.T) + (centres * centres).sum(1)[None, :]
    return np.maximum(d2, 0.0)


def kmeans(
    x: np.ndarray,
    k: int,
    iterations: int = 20,
    seed: int = KMEANS_SEED,
    init: str = "++",
    chunk: int = 4_096,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means: `(centroids (k, d), labels (n,), inertia)`; deterministic for a seed.

    `init="++"` is k-means++ seeding (best for a few clusters), `"random"` picks k distinct rows
    (cheap for thousands of cells). An emptied cluster keeps its previous centroid. Rows are
    assigned `chunk` at a time so memory stays bounded for large `n × k`.

    >>> x = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], dtype=np.float32)
    >>> centres, labels, inertia = kmeans(x, 2)
    >>> sorted(centres.tolist()), inertia
    ([[0.0, 0.5], [10.0, 10.5]], 1.0)
    """
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if n == 0:
        return np.zeros((0, x.shape[1] if x.ndim == 2 else 0), np.float32), np.zeros(0, np.int64), 0.0
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    if init == "random":
        centres = x[np.sort(rng.choice(n, size=k, replace=False))].copy()
    else:
        centres = np.empty((k, x.shape[1]), dtype=np.float32)
        centres[0] = x[int(rng.integers(n))]
        closest = _sq_distances(x, centres[:1])[:, 0]
        for c in range(1, k):
            total = float(closest.sum())
            if total <= 0.0:  # fewer distinct points than k: repeat one
                centres[c:] = centres[0]
                break
            pick = int(np.searchsorted(np.cumsum(closest, dtype=np.float64), rng.random() * total))
            centres[c] = x[min(pick, n - 1)]
            closest = np.minimum(closest, _sq_distances(x, centres[c : c + 1])[:, 0])
    labels = np.zeros(n, dtype=np.int64)
    for step in range(max(1, iterations)):
        new_labels = assign_to_centres(x, centres, chunk)
        if step > 0 and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        sums = np.zeros_like(centres, dtype=np.float64)
        _add_rows(sums, labels, x)
        counts = np.bincount(labels, minlength=k)
        filled = counts > 0
        centres[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    labels = assign_to_centres(x, centres, chunk)
    inertia = float(((x - centres[labels]) ** 2).sum(dtype=np.float64))
    return centres, labels, round(inertia, 6)


def _add_rows(sums: np.ndarray, labels: np.ndarray, x: np.ndarray) -> None:
    for d in range(x.shape[1]):
        sums[:, d] = np.bincount(labels, weights=x[:, d], minlength=len(sums))


def assign_to_centres(x: np.ndarray, centres: np.ndarray, chunk: int) -> np.ndarray:
    # argmin_c |x − c|² = argmin_c (|c|² − 2 x·c): the row's |x|² does not change the winner.
    out = np.empty(len(x), dtype=np.int64)
    minus_two_c = (-2.0 * centres).T.astype(np.float32)
    c_norms = (centres * centres).sum(1).astype(np.float32)
    for start in range(0, len(x), chunk):
        scores = x[start : start + chunk] @ minus_two_c
        scores += c_norms
        out[start : start + chunk] = np.argmin(scores, axis=1)
    return out


@dataclass(frozen=True)
class TasteClusters:
    centroids: np.ndarray
    """(k, d) in the same (z-scored) space as the points that made them."""
    labels: np.ndarray
    """(n,) the cluster of each liked track."""

    @property
    def k(self) -> int:
        return len(self.centroids)

    def assign(self, z: np.ndarray) -> np.ndarray:
        """The nearest cluster of each row of `z`."""
        if self.k <= 1 or len(z) == 0:
            return np.zeros(len(z), dtype=np.int64)
        return np.argmin(_sq_distances(np.asarray(z, dtype=np.float32), self.centroids), axis=1)


def taste_clusters(
    liked_z: np.ndarray,
    max_k: int = MAX_CLUSTERS,
    min_size: int = MIN_CLUSTER_SIZE,
    min_gain: float = MIN_CLUSTER_GAIN,
    seed: int = KMEANS_SEED,
) -> TasteClusters:
    """The listener's distinct tastes: k-means over liked tracks' z-scored features, k ≤ `max_k`.

    k grows from 1 while one more cluster cuts the within-cluster sum of squares by ≥ `min_gain`
    and every cluster keeps ≥ `min_size` tracks.
    """
    x = np.asarray(liked_z, dtype=np.float32)
    if len(x) == 0:
        empty = np.zeros((0, x.shape[1] if x.ndim == 2 else 0), np.float32)
        return TasteClusters(empty, np.zeros(0, np.int64))
    best_centres, best_labels, best_inertia = kmeans(x, 1, seed=seed)
    for k in range(2, min(max_k, len(x) // max(min_size, 1)) + 1):
        centres, labels, inertia = kmeans(x, k, seed=seed)
        if np.bincount(labels, minlength=k).min() < min_size:
            break
        if best_inertia <= 0 or inertia > (1.0 - min_gain) * best_inertia:
            break
        best_centres, best_labels, best_inertia = centres, labels, inertia
    # Number clusters by first appearance among the liked tracks: a stable, readable order.
    _, first = np.unique(best_labels, return_index=True)
    order = np.unique(best_labels)[np.argsort(first)]
    relabel = np.empty(len(best_centres), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    return TasteClusters(best_centres[order], relabel[best_labels])


def kernel_similarity(z: np.ndarray, bandwidth: float = 1.0) -> np.ndarray:
    """(n, n) taste-kernel similarity: exp(−mean squared difference / (2 · bandwidth²))."""
    z = np.asarray(z, dtype=np.float32)
    d2 = _sq_distances(z, z) / max(z.shape[1], 1)
    return np.exp(-d2 / (2.0 * bandwidth**2))


def diversify(
    relevance: np.ndarray,
    z: np.ndarray,
    artist_of: np.ndarray,
    k: int,
    diversity: float = RANKING_CONFIG.diversity_default,
    max_per_artist: int | None = RANKING_CONFIG.max_per_artist,
    clusters: TasteClusters | None = None,
    bandwidth: float = 1.0,
    artist_repeat_penalty: float = 0.0,
) -> list[int]:
    """Pick up to k candidates, as indices into the inputs, in the order to show them.

    `relevance` (n,) is the score (higher is better), `z` (n, d) the candidates' z-scored features,
    `artist_of` (n,) any artist key, `clusters` the listener's `taste_clusters` (None: one cluster).
    `artist_repeat_penalty` is taken off the (min-max scaled) relevance of a candidate per pick of its
    artist already made: a second track of an artist must beat other artists by that much.
    """
    rel = np.asarray(relevance, dtype=np.float64)
    n = len(rel)
    if n == 0 or k <= 0:
        return []
    lam = float(min(1.0, max(0.0, diversity)))
    finite = np.isfinite(rel)
    low, high = (rel[finite].min(), rel[finite].max()) if finite.any() else (0.0, 0.0)
    rel_n = np.where(finite, (rel - low) / (high - low) if high > low else 1.0, -np.inf)
    artists = np.asarray(artist_of)
    _, artist_key = np.unique(artists, return_inverse=True)
    artist_count = np.zeros(artist_key.max() + 1, dtype=np.int64)
    cap = n if max_per_artist is None else max(0, max_per_artist)
    cluster = clusters.assign(z) if (clusters is not None and lam > 0) else np.zeros(n, dtype=np.int64)
    cluster_picks = np.zeros(cluster.max() + 1, dtype=np.int64)
    z32 = np.asarray(z, dtype=np.float32)
    sq = (z32 * z32).sum(1)
    dims = max(z32.shape[1], 1) if z32.ndim == 2 else 1
    max_sim = np.zeros(n)
    available = finite.copy()
    # Tie-break: more relevant first, then earlier; encoded as a tiny rank-based offset.
    order_rank = np.empty(n, dtype=np.float64)
    order_rank[np.lexsort((np.arange(n), -np.where(finite, rel, -1e300)))] = np.arange(n)
    picked: list[int] = []
    while len(picked) < k:
        eligible = available & (artist_count[artist_key] < cap)
        if not eligible.any():
            break
        value = rel_n - artist_repeat_penalty * artist_count[artist_key]
        if lam > 0:
            # The clusters that still have an eligible candidate (a bincount: no sort per pick).
            present = np.bincount(cluster[eligible], minlength=len(cluster_picks)) > 0
            fewest = cluster_picks[present].min()
            cover = (cluster_picks[cluster] == fewest) & present[cluster]
            value = value - lam * max_sim + lam * cover
        value = np.where(eligible, value, -np.inf)
        best = value.max()
        ties = np.flatnonzero(value >= best - 1e-12)
        i = int(ties[np.argmin(order_rank[ties])])
        picked.append(i)
        available[i] = False
        artist_count[artist_key[i]] += 1
        cluster_picks[cluster[i]] += 1
        if lam > 0:
            # Only the picked rows of the similarity matrix are ever needed: k × n, not n × n.
            d2 = np.maximum(sq + sq[i] - 2.0 * (z32 @ z32[i]), 0.0) / dims
            max_sim = np.maximum(max_sim, np.exp(-d2 / (2.0 * bandwidth**2)))
    return picked
