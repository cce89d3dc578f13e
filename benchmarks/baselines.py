"""Offline recommendation baselines for the quality benchmarks: pure numpy / scipy / `implicit`, no I/O.

Every model is fitted on a user x item matrix `X` (scipy CSR, non-negative interaction strengths:
here the summed event weights a listener gave a track or an artist) and scores items for one or
more *history rows* (the same kind of matrix, one row per listener to score), so a listener whose
history changed after the fit (a taste switch) is folded in without a refit:

- `Popularity`: the number of listeners of each item (the same list for everyone);
- `ItemKNN`: item-item similarity from co-occurrence, the asymmetric cosine of Aiolli (2013),
  `s(i, j) = c(i, j) / (n(i)^alpha * n(j)^(1 - alpha) + shrink)` (alpha = 0.5, shrink = 0 is the
  plain cosine), each item's row kept to its `neighbours` largest entries; a candidate scores the
  sum of its similarities to the history, weighted by the history's values (or binary);
- `EASE`: Steck (2019), `B = I - P diagMat(1 / diag(P))` with `P = (X^T X + lambda I)^-1`, zero
  diagonal; scores = history @ B;
- `ALS`: `implicit`'s AlternatingLeastSquares (Hu, Koren, Volinsky 2008; confidence 1 + alpha x),
  a folded-in listener's vector recomputed with `recalculate_user`.

`rank_items` and `spread_to_tracks` turn item scores into a ranked list with exclusions;
`spread_to_tracks` maps artist scores to tracks (each ranked artist contributes its best tracks
round robin: first every artist's top track, then every artist's second, ...).

>>> import scipy.sparse as sp
>>> X = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float32))
>>> knn = ItemKNN().fit(X)
>>> round(float(knn.similarity[0, 1]), 4)  # c = 2, n = (2, 3): 2 / sqrt(6)
0.8165
>>> [int(i) for i in rank_items(knn.score(X[2]), exclude=np.array([1, 2]), n=3)]
[0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["ALS", "EASE", "ItemKNN", "Popularity", "binarize", "rank_items", "spread_to_tracks"]

_TIE = 1e-9
"""Weight of the popularity tie-break added to every score (scores of interest are far larger)."""


def binarize(X: sp.spmatrix) -> sp.csr_matrix:
    """The same matrix with every stored positive entry set to 1 (float32)."""
    B = sp.csr_matrix(X, dtype=np.float32, copy=True)
    B.eliminate_zeros()
    B.data[:] = 1.0
    return B


def _rows(history: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    if sp.issparse(history):
        return sp.csr_matrix(history, dtype=np.float32)
    return sp.csr_matrix(np.atleast_2d(np.asarray(history, dtype=np.float32)))


@dataclass
class Popularity:
    """Items by their number of listeners (ties: lower index first)."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, X: sp.spmatrix) -> Popularity:
        self.counts = np.asarray(binarize(X).sum(axis=0)).ravel().astype(np.float64)
        return self

    def score(self, history: sp.spmatrix | np.ndarray) -> np.ndarray:
        n = _rows(history).shape[0]
        return np.tile(self.counts, (n, 1)).squeeze(0) if n == 1 else np.tile(self.counts, (n, 1))


@dataclass
class ItemKNN:
    """Item-item neighbourhood model (asymmetric cosine with shrinkage, top-`neighbours` rows).

    `weighted`: score with the history's values (True) or with its support only (False).
    `user_weight` γ: each user adds deg(u)^−γ to the co-occurrence of a pair they hold (deg = their
    items), the inverse user frequency of item-based CF: someone who holds few items says more about
    each pair than someone who holds hundreds (0: every user counts one)."""

    alpha: float = 0.5
    shrink: float = 0.0
    neighbours: int | None = None
    weighted: bool = False
    user_weight: float = 0.0
    similarity: sp.csr_matrix = field(default_factory=lambda: sp.csr_matrix((0, 0)))

    def fit(self, X: sp.spmatrix) -> ItemKNN:
        B = binarize(X)
        if self.user_weight:
            degree = np.asarray(B.sum(axis=1)).ravel().astype(np.float64)
            w = np.where(degree > 0, np.maximum(degree, 1.0) ** -self.user_weight, 0.0)
            C = (B.T @ sp.diags(w) @ B).tocsr().astype(np.float64)
        else:
            C = (B.T @ B).tocsr().astype(np.float64)
        C.setdiag(0.0)
        C.eliminate_zeros()
        n = np.asarray(B.sum(axis=0)).ravel().astype(np.float64)
        C = C.tocoo()
        denom = n[C.row] ** self.alpha * n[C.col] ** (1.0 - self.alpha) + self.shrink
        S = sp.csr_matrix((C.data / denom, (C.row, C.col)), shape=C.shape)
        if self.neighbours is not None:
            S = _top_per_row(S, self.neighbours)
        # Rows are "from" items (the history), columns "to" items (the candidates).
        self.similarity = S
        return self

    def score(self, history: sp.spmatrix | np.ndarray) -> np.ndarray:
        H = _rows(history)
        if not self.weighted:
            H = binarize(H)
        out = np.asarray((H @ self.similarity).todense())
        return out[0] if out.shape[0] == 1 else out


def _top_per_row(S: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep each row's k largest entries (ties: lower column first)."""
    S = S.tocsr()
    indptr, indices, data = [0], [], []
    for r in range(S.shape[0]):
        lo, hi = S.indptr[r], S.indptr[r + 1]
        cols, vals = S.indices[lo:hi], S.data[lo:hi]
        if len(vals) > k:
            keep = np.lexsort((cols, -vals))[:k]
            cols, vals = cols[keep], vals[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(cols))
    return sp.csr_matrix((np.concatenate(data) if data else np.zeros(0),
                          np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32),
                          np.array(indptr)), shape=S.shape)


@dataclass
class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019) on the binarised matrix."""

    lam: float = 100.0
    weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def fit(self, X: sp.spmatrix) -> EASE:
        B = binarize(X)
        G = (B.T @ B).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.lam
        P = np.linalg.inv(G)
        W = P / (-np.diag(P))
        W[np.diag_indices_from(W)] = 0.0
        self.weights = W
        return self

    def score(self, history: sp.spmatrix | np.ndarray) -> np.ndarray:
        H = binarize(_rows(history))
        out = np.asarray(H @ self.weights)
        return out[0] if out.shape[0] == 1 else out


@dataclass
class ALS:
    """Implicit-feedback matrix factorisation (`implicit.cpu.als`), confidence 1 + alpha * value.

    `log_values`: fit on log1p(values) instead of the raw values."""

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15
    log_values: bool = False
    seed: int = 0
    threads: int = 1
    model: object = None
    train: sp.csr_matrix = field(default_factory=lambda: sp.csr_matrix((0, 0)))

    def _values(self, X: sp.spmatrix) -> sp.csr_matrix:
        M = sp.csr_matrix(X, dtype=np.float32, copy=True)
        if self.log_values:
            M.data = np.log1p(M.data)
        return M

    def fit(self, X: sp.spmatrix) -> ALS:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        self.train = self._values(X)
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; a BLAS pool only slows it
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                            alpha=self.alpha, iterations=self.iterations,
                                            random_state=self.seed, num_threads=self.threads,
                                            calculate_training_loss=False)
            model.fit(self.train, show_progress=False)
        self.model = model
        return self

    def user_vectors(self, users: np.ndarray | None, history: sp.spmatrix | np.ndarray) -> np.ndarray:
        """Fitted vectors of the given training rows, or (users None) vectors folded in from history."""
        m = self.model
        if users is not None:
            return np.asarray(m.user_factors)[users]  # type: ignore[attr-defined]
        H = self._values(_rows(history))
        return np.asarray(m.recalculate_user(np.arange(H.shape[0]), H))  # type: ignore[attr-defined]

    def score(self, history: sp.spmatrix | np.ndarray, users: np.ndarray | None = None) -> np.ndarray:
        vectors = np.atleast_2d(self.user_vectors(users, history))
        out = vectors @ np.asarray(self.model.item_factors).T  # type: ignore[attr-defined]
        return out[0] if out.shape[0] == 1 else out


def rank_items(scores: np.ndarray, exclude: np.ndarray, n: int,
               tie_break: np.ndarray | None = None) -> np.ndarray:
    """The n best item indices by score, never an excluded one; ties by `tie_break` (higher first),
    then by lower index. Items scoring -inf are never returned."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if tie_break is not None:
        top = float(np.max(tie_break)) or 1.0
        s += _TIE * np.asarray(tie_break, dtype=np.float64) / top
    if len(exclude):
        s[np.asarray(exclude, dtype=np.int64)] = -np.inf
    n = min(n, int(np.isfinite(s).sum()))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-s, n - 1)[:n] if n < len(s) else np.arange(len(s))
    order = np.lexsort((part, -s[part]))
    return part[order][:n].astype(np.int64)


def spread_to_tracks(artist_order: np.ndarray, artist_tracks: list[np.ndarray], exclude: set[int],
                     n: int) -> np.ndarray:
    """Tracks for ranked artists, round robin: every artist's best track not excluded, in artist order,
    then every artist's second, ... until n tracks (`artist_tracks[a]`: a's tracks, best first).

    >>> spread_to_tracks(np.array([2, 0]), [np.array([5, 6]), np.array([]), np.array([7, 8, 9])],
    ...                  exclude={7}, n=4).tolist()
    [8, 5, 9, 6]
    """
    queues: dict[int, list[int]] = {}
    out: list[int] = []
    depth = 0
    while len(out) < n:
        added = False
        for a in artist_order:
            a = int(a)
            q = queues.get(a)
            if q is None:
                q = queues[a] = [int(t) for t in artist_tracks[a] if int(t) not in exclude]
            if depth < len(q):
                out.append(q[depth])
                added = True
                if len(out) >= n:
                    break
        if not added:
            break
        depth += 1
    return np.array(out, dtype=np.int64)
