"""The offline baselines of the quality benchmarks (benchmarks/baselines.py), on tiny synthetic data."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks import baselines
from benchmarks.baselines import ALS, EASE, ItemKNN, Popularity, binarize, rank_items, spread_to_tracks


def block_matrix(users_per_block: int = 6, items_per_block: int = 4, blocks: int = 2,
                 seed: int = 0) -> sp.csr_matrix:
    """Users of block b use most items of block b and nothing else."""
    rng = np.random.default_rng(seed)
    X = np.zeros((users_per_block * blocks, items_per_block * blocks), dtype=np.float32)
    for b in range(blocks):
        for u in range(users_per_block):
            row = b * users_per_block + u
            items = b * items_per_block + rng.choice(items_per_block, size=items_per_block - 1, replace=False)
            X[row, items] = rng.integers(1, 4, size=len(items))
    return sp.csr_matrix(X)


def test_doctests() -> None:
    assert doctest.testmod(baselines).failed == 0


def test_binarize_keeps_support_only() -> None:
    X = sp.csr_matrix(np.array([[3.0, 0.0, 0.5]]))
    assert binarize(X).toarray().tolist() == [[1.0, 0.0, 1.0]]


def test_popularity_counts_listeners_not_plays() -> None:
    X = sp.csr_matrix(np.array([[9, 0, 1], [0, 0, 1], [1, 0, 1]], dtype=np.float32))
    assert Popularity().fit(X).score(X[0]).tolist() == [2.0, 0.0, 3.0]


def test_knn_cosine_equals_hand_computation() -> None:
    X = sp.csr_matrix(np.array([[1, 1, 0, 1], [1, 0, 1, 0], [1, 1, 1, 0], [0, 1, 0, 1]], dtype=np.float32))
    S = ItemKNN().fit(X).similarity.toarray()
    # item 0: users {0,1,2}; item 1: {0,2,3}; item 2: {1,2}; item 3: {0,3}
    assert S[0, 1] == pytest.approx(2 / math.sqrt(3 * 3))
    assert S[0, 2] == pytest.approx(2 / math.sqrt(3 * 2))
    assert S[1, 3] == pytest.approx(2 / math.sqrt(3 * 2))
    assert S[2, 3] == 0.0
    assert np.all(np.diag(S) == 0.0)
    # history {3}: score(j) = s(3, j)
    only_3 = sp.csr_matrix(np.array([[0, 0, 0, 1]], dtype=np.float32))
    expected = [1 / math.sqrt(6), 2 / math.sqrt(6), 0.0, 0.0]
    assert ItemKNN().fit(X).score(only_3).tolist() == pytest.approx(expected)


def test_knn_asymmetric_alpha_and_shrink() -> None:
    X = sp.csr_matrix(np.array([[1, 1], [1, 0], [1, 0], [1, 1]], dtype=np.float32))  # n = (4, 2), c = 2
    S = ItemKNN(alpha=0.8, shrink=1.0).fit(X).similarity.toarray()
    assert S[0, 1] == pytest.approx(2 / (4 ** 0.8 * 2 ** 0.2 + 1))
    assert S[1, 0] == pytest.approx(2 / (2 ** 0.8 * 4 ** 0.2 + 1))


def test_knn_user_weight_counts_each_user_as_one_over_their_degree() -> None:
    # Users 0 and 3 hold both items: user 0 holds 2 items, user 3 holds 3 (a third item).
    X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]], dtype=np.float32))
    plain = ItemKNN().fit(X).similarity.toarray()
    weighted = ItemKNN(user_weight=1.0).fit(X).similarity.toarray()
    n = np.array([3.0, 2.0, 2.0])
    assert plain[0, 1] == pytest.approx(2 / math.sqrt(n[0] * n[1]))
    assert weighted[0, 1] == pytest.approx((1 / 2 + 1 / 3) / math.sqrt(n[0] * n[1]))
    assert weighted[1, 2] == pytest.approx((1 / 3) / math.sqrt(n[1] * n[2]))
    assert np.all(np.diag(weighted) == 0.0)


def test_knn_neighbours_keeps_the_largest_per_row() -> None:
    X = block_matrix(items_per_block=5)
    full = ItemKNN().fit(X).similarity.toarray()
    top2 = ItemKNN(neighbours=2).fit(X).similarity.toarray()
    for r in range(full.shape[0]):
        kept = np.flatnonzero(top2[r])
        assert len(kept) == min(2, np.count_nonzero(full[r]))
        assert np.all(top2[r, kept] == full[r, kept])
        assert full[r, kept].min() >= np.sort(full[r])[-2]


def test_knn_weighted_history_uses_values() -> None:
    X = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float32))
    h = sp.csr_matrix(np.array([[3.0, 1.0, 0.0]]))
    S = ItemKNN().fit(X).similarity.toarray()
    assert ItemKNN(weighted=True).fit(X).score(h)[2] == pytest.approx(3 * S[0, 2] + S[1, 2])
    assert ItemKNN(weighted=False).fit(X).score(h)[2] == pytest.approx(S[0, 2] + S[1, 2])


def test_ease_recovers_the_blocks() -> None:
    X = block_matrix()
    W = EASE(lam=1.0).fit(X).weights
    assert np.all(np.diag(W) == 0.0)
    assert np.abs(W[:4, 4:]).max() < 1e-9 and np.abs(W[4:, :4]).max() < 1e-9
    assert W[:4, :4].sum() > 0.5 and W[4:, 4:].sum() > 0.5
    scores = EASE(lam=1.0).fit(X).score(sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0, 0, 0]], dtype=np.float32)))
    assert set(rank_items(scores, np.array([0, 1]), 2).tolist()) == {2, 3}


def test_ease_closed_form() -> None:
    X = block_matrix(seed=3)
    lam = 5.0
    G = binarize(X).T @ binarize(X)
    P = np.linalg.inv(G.toarray() + lam * np.eye(G.shape[0]))
    expected = np.eye(G.shape[0]) - P / np.diag(P)
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(EASE(lam=lam).fit(X).weights, expected)


def test_als_ranks_the_listeners_block_first() -> None:
    X = block_matrix(users_per_block=20, items_per_block=6, blocks=3, seed=1)
    model = ALS(factors=8, regularization=0.1, alpha=5.0, iterations=20).fit(X)
    for user in (0, 25, 50):
        block = user // 20
        played = X[user].indices
        # each listener played 5 of their block's 6 items: the sixth must come first
        top = rank_items(model.score(X[user], np.array([user])), played, 1)
        assert [t // 6 for t in top] == [block]
        folded = rank_items(model.score(X[user]), played, 1)  # recalculated from the history alone
        assert [t // 6 for t in folded] == [block]


def test_rank_items_excludes_and_breaks_ties() -> None:
    scores = np.array([1.0, 2.0, 2.0, 0.0, 5.0])
    assert rank_items(scores, np.array([4]), 3).tolist() == [1, 2, 0]
    assert rank_items(scores, np.array([4]), 3, tie_break=np.array([0, 1, 9, 0, 0])).tolist() == [2, 1, 0]
    assert rank_items(scores, np.arange(5), 3).tolist() == []


def test_spread_round_robin_skips_excluded_and_empty() -> None:
    tracks = [np.array([0, 1, 2]), np.array([3]), np.array([4, 5])]
    assert spread_to_tracks(np.array([1, 0, 2]), tracks, {3}, 5).tolist() == [0, 4, 1, 5, 2]
    assert spread_to_tracks(np.array([2]), tracks, set(), 5).tolist() == [4, 5]
