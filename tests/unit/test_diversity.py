"""Diversification: online_models/diversity.py."""

from __future__ import annotations

import numpy as np
import pytest

from ranking.diversity import diversify, kernel_similarity, kmeans, taste_clusters


def two_clusters(n_per: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster A near 0 (the most relevant), cluster B near 4 (less relevant)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 0.1, (n_per, 9)).astype(np.float32)
    b = rng.normal(4.0, 0.1, (n_per, 9)).astype(np.float32)
    z = np.vstack([a, b])
    relevance = np.concatenate([np.linspace(1.0, 0.8, n_per), np.linspace(0.6, 0.4, n_per)])
    return z, relevance


def test_kmeans_is_deterministic_and_finds_separated_groups() -> None:
    z, _ = two_clusters()
    first = kmeans(z, 2, seed=3)
    second = kmeans(z, 2, seed=3)
    assert np.array_equal(first[1], second[1])
    assert np.array_equal(first[0], second[0])
    labels = first[1]
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]


def test_kmeans_with_more_clusters_than_points() -> None:
    centres, labels, inertia = kmeans(np.zeros((2, 3), np.float32), 5)
    assert len(centres) == 2 and inertia == 0.0 and len(labels) == 2


def test_taste_clusters_choose_k() -> None:
    z, _ = two_clusters()
    assert taste_clusters(z).k == 2
    one_blob = np.random.default_rng(1).normal(0, 1, (30, 9)).astype(np.float32)
    assert taste_clusters(one_blob).k == 1
    assert taste_clusters(z[:3]).k == 1  # too few liked tracks for two clusters of ≥ 2
    assert taste_clusters(np.zeros((0, 9), np.float32)).k == 0
    four = np.vstack([z, z + 10.0])
    assert taste_clusters(four, max_k=4).k <= 4


def test_diversity_zero_is_relevance_order() -> None:
    z, relevance = two_clusters()
    rng = np.random.default_rng(5)
    shuffled = rng.permutation(len(relevance))
    artists = np.arange(len(relevance))
    picked = diversify(relevance[shuffled], z[shuffled], artists, k=20, diversity=0.0,
                       clusters=taste_clusters(z))
    assert [int(shuffled[i]) for i in picked] == list(np.argsort(-relevance, kind="stable"))


def test_diversity_one_covers_both_clusters_in_top_four() -> None:
    z, relevance = two_clusters()
    clusters = taste_clusters(z)
    picked = diversify(relevance, z, np.arange(20), k=4, diversity=1.0, clusters=clusters)
    assert {i < 10 for i in picked} == {True, False}
    assert picked[0] == 0  # the first slot still goes to the most relevant
    # Without diversity the top 4 all come from the more relevant cluster.
    plain = diversify(relevance, z, np.arange(20), k=4, diversity=0.0, clusters=clusters)
    assert all(i < 10 for i in plain)


def test_diversity_trades_relevance_for_coverage() -> None:
    """λ = 1: the clusters alternate; λ = 0.5: the weaker cluster gets a slot, relevance still leads."""
    z, relevance = two_clusters()
    clusters = taste_clusters(z)
    full = diversify(relevance, z, np.arange(20), k=6, diversity=1.0, clusters=clusters)
    assert [i < 10 for i in full] == [True, False] * 3
    half = [i < 10 for i in diversify(relevance, z, np.arange(20), k=6, diversity=0.5, clusters=clusters)]
    assert 1 <= half.count(False) < 3
    assert half[0]


def test_artist_cap_is_honoured() -> None:
    z, relevance = two_clusters()
    artists = np.array(["x"] * 15 + ["y"] * 5)
    for diversity in (0.0, 0.5, 1.0):
        picked = diversify(relevance, z, artists, k=10, diversity=diversity, max_per_artist=2)
        names = [artists[i] for i in picked]
        assert names.count("x") <= 2 and names.count("y") <= 2
        assert len(picked) == 4  # the cap is hard: the list comes out shorter


def test_no_cap_and_edge_cases() -> None:
    z, relevance = two_clusters()
    same = np.zeros(20, dtype=np.int64)
    assert len(diversify(relevance, z, same, k=20, diversity=0.0, max_per_artist=None)) == 20
    assert diversify(relevance[:0], z[:0], same[:0], k=5) == []
    assert diversify(relevance, z, same, k=0) == []
    rel = relevance.copy()
    rel[3] = -np.inf  # filtered out upstream
    assert 3 not in diversify(rel, z, np.arange(20), k=20, diversity=0.7)
    flat = np.ones(20)
    assert diversify(flat, z, np.arange(20), k=3, diversity=0.0) == [0, 1, 2]


@pytest.mark.parametrize("diversity", [0.0, 0.3, 1.0])
def test_diversify_is_deterministic(diversity: float) -> None:
    z, relevance = two_clusters(seed=7)
    clusters = taste_clusters(z)
    runs = {tuple(diversify(relevance, z, np.arange(20) % 7, 10, diversity, 2, clusters)) for _ in range(3)}
    assert len(runs) == 1


def test_kernel_similarity_matches_the_taste_kernel() -> None:
    z = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    sim = kernel_similarity(z)
    assert sim[0, 0] == pytest.approx(1.0)
    assert sim[0, 1] == pytest.approx(np.exp(-1.0 / 2.0), rel=1e-6)
