"""Candidate generation: online_models/candidates.py."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ranking.candidates import SOURCE_TERMS, Candidate, SourceCandidates, merge_candidates, source_terms
from ranking.catalog_index import CatalogIndex
from ranking.catalog_view import global_taste, taste_neighbours
from ranking.config import RANKING_CONFIG
from ranking.feature_space import FeatureSpace, PartitionIndex
from ranking.listener import recent_positives
from ranking.seeds import seed_profile
from ranking.sources.co_listening import co_listening_neighbours
from ranking.sources.popular import popular_candidates
from ranking.sources.seed import seed_candidates
from ranking.sources.taste import cluster_neighbours
from ranking.sources.trending import trending_candidates
from schemas.events import EventType
from schemas.profile_codec import RecentTrack, UserProfile
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, Track


def make_catalog(n: int = 300, seed: int = 2) -> list[Track]:
    rng = random.Random(seed)
    tracks = []
    for i in range(n):
        features = {name: rng.uniform(*FEATURE_RANGES[name]) for name in AUDIO_FEATURES}
        features["loudness"] = rng.uniform(-30.0, 0.0)
        tracks.append(Track(track_id=f"t{i}", title=f"Song {i}", artist=f"Artist {i % 40}",
                            genres=[("rock", "jazz", "edm")[i % 3]], popularity=rng.uniform(0, 100),
                            **features))
    tracks.append(Track(track_id="nofeat", artist="Artist 0", genres=["rock"], popularity=10))
    return tracks


@pytest.fixture(scope="module")
def index() -> CatalogIndex:
    return CatalogIndex.build(make_catalog())


@pytest.fixture(scope="module")
def space(index: CatalogIndex) -> FeatureSpace:
    return FeatureSpace.from_index(index)


def scoring_taste_term(index: CatalogIndex, taste: np.ndarray) -> np.ndarray:
    """The taste kernel, written out."""
    z_user = (taste - index.feature_mean) / index.feature_std
    z_tracks = (index.features - index.feature_mean) / index.feature_std
    d2 = np.mean((z_tracks - z_user) ** 2, axis=1)
    return np.exp(-d2 / (2 * RANKING_CONFIG.taste_bandwidth**2))


def test_kernel_equals_scoring_taste_term(index: CatalogIndex, space: FeatureSpace) -> None:
    taste = index.features[17]
    np.testing.assert_allclose(space.kernel(taste), scoring_taste_term(index, taste), atol=1e-5)


def test_taste_neighbours_is_exact_top_n(index: CatalogIndex, space: FeatureSpace) -> None:
    taste = np.full(9, 0.5, np.float32)
    got = taste_neighbours(space, taste, n=25, exclude={0, 1})
    expected = scoring_taste_term(index, taste)
    expected[[0, 1]] = -np.inf
    assert set(got.positions.tolist()) == set(np.argsort(-expected)[:25].tolist())
    assert np.all(np.diff(got.scores) <= 0)
    assert got.source == "taste" and len(got) == 25


def test_partition_index_recall_and_exclusion() -> None:
    rng = np.random.default_rng(0)
    features = rng.random((20_000, 9), dtype=np.float32)
    space = FeatureSpace.from_features(features, features.mean(0), features.std(0))
    ivf = PartitionIndex.build(space, n_cells=64)
    assert ivf.offsets[-1] == 20_000 and sorted(ivf.order.tolist()) == list(range(20_000))
    recalls = []
    for q in rng.choice(20_000, 10, replace=False):
        exact = set(taste_neighbours(space, features[q], n=100).positions.tolist())
        approx = ivf.query(features[q], n=100, n_probe=8)
        recalls.append(len(exact & set(approx.positions.tolist())) / 100)
        assert np.all(np.diff(approx.scores) <= 0)
    assert np.mean(recalls) > 0.85
    everything = ivf.query(features[3], n=100, n_probe=64)  # all cells: exact
    assert everything.positions.tolist() == taste_neighbours(space, features[3], 100).positions.tolist()
    assert 3 not in ivf.query(features[3], n=10, n_probe=4, exclude={3}).positions


def test_partition_index_is_deterministic() -> None:
    features = np.random.default_rng(4).random((3_000, 9), dtype=np.float32)
    space = FeatureSpace.from_features(features, features.mean(0), features.std(0))
    a, b = PartitionIndex.build(space, n_cells=20), PartitionIndex.build(space, n_cells=20)
    assert np.array_equal(a.centroids, b.centroids) and np.array_equal(a.order, b.order)


def test_recent_positives_newest_first_each_once() -> None:
    profile = UserProfile("u", recent=[
        RecentTrack("a", EventType.COMPLETE), RecentTrack("b", EventType.SKIP),
        RecentTrack("c", EventType.LIKE), RecentTrack("a", EventType.LIKE),
    ])
    got = recent_positives(profile)
    assert [t for t, _ in got] == ["a", "c"]
    assert got[0][1] == pytest.approx(1.0) and got[1][1] == pytest.approx(0.9)


def test_co_listening_sums_seeds_and_remembers_via(index: CatalogIndex) -> None:
    neighbours = {
        "t0": [("t5", 10.0), ("t6", 5.0), ("unknown", 9.0), ("t1", 8.0)],
        "t1": [("t6", 4.0), ("t7", 1.0)],
    }
    got = co_listening_neighbours(index, [("t0", 1.0), ("t1", 0.8)], neighbours, n=10, exclude={7})
    scores = dict(zip(got.positions.tolist(), got.scores.tolist(), strict=True))
    assert set(scores) == {5, 6}  # seeds, unknown ids and excluded positions left out
    assert scores[5] == pytest.approx(1.0) and scores[6] == pytest.approx(0.5 + 0.8)
    assert got.positions.tolist() == [6, 5]
    assert got.via == ["t1", "t0"]  # t1 gave t6 more (0.8) than t0 did (0.5)
    assert len(co_listening_neighbours(index, [("t9", 1.0)], {}, n=10)) == 0


def test_trending_and_popular(index: CatalogIndex) -> None:
    got = trending_candidates(index, [("t3", 2.0), ("nope", 9.0), ("t4", 5.0), ("t3", 1.0)], n=5)
    assert got.positions.tolist() == [4, 3] and got.scores.tolist() == [5.0, 2.0]
    popular = popular_candidates(index, n=5, exclude={int(np.argmax(index.popularity))})
    assert np.all(np.diff(popular.scores) <= 0)
    assert int(np.argmax(index.popularity)) not in popular.positions


def test_global_taste_leans_to_popular(index: CatalogIndex) -> None:
    taste = global_taste(index)
    assert taste.shape == (9,) and np.all((taste >= 0) & (taste <= 1))
    empty = CatalogIndex.build([Track(track_id="x")])
    assert global_taste(empty).tolist() == pytest.approx([0.5] * 9)


def test_seed_profile_from_tracks_and_artists(index: CatalogIndex, space: FeatureSpace) -> None:
    seed = seed_profile(index, track_ids=["t1", "t1", "missing"], artists=["artist 2", "Nobody"])
    artist2 = [i for i, t in enumerate(index.tracks) if t.artist == "Artist 2"]
    assert seed.positions[0] == 1
    assert set(seed.positions[1:]) <= set(artist2)
    assert len(seed.positions) == 1 + RANKING_CONFIG.seed_tracks_per_artist
    assert seed.unknown_tracks == ["missing"] and seed.unknown_artists == ["Nobody"]
    assert seed.artists["Artist 2"] == 1.0 and "Artist 1" in seed.artists
    assert max(seed.genres.values()) == 1.0
    np.testing.assert_allclose(seed.taste, index.features[seed.positions].mean(0), atol=1e-6)
    profile = seed.to_profile("new")
    assert profile.version == 0 and profile.taste == seed.taste
    near = seed_candidates(space, seed, n=10)
    assert near.source == "seed" and not set(near.positions.tolist()) & set(seed.positions)
    nothing = seed_profile(index, track_ids=["nofeat"])
    assert nothing.taste == [] and len(seed_candidates(space, nothing)) == 0


def test_merge_quotas_dedupe_and_provenance() -> None:
    a = SourceCandidates("taste", np.array([1, 2, 3, 4]), np.array([0.9, 0.8, 0.7, 0.6], np.float32))
    b = SourceCandidates("co_listening", np.array([2, 5, 6]), np.array([3.0, 2.0, 1.0], np.float32),
                              via=["x", "y", "z"])
    c = SourceCandidates("trending", np.array([7, 1]), np.array([5.0, 4.0], np.float32))
    merged = merge_candidates([a, b, c], quotas={"taste": 2, "co_listening": 2, "trending": 5},
                                   exclude={6})
    assert [m.position for m in merged] == [1, 2, 7, 3, 5]
    by_position = {m.position: m for m in merged}
    assert by_position[2].sources == {"taste": pytest.approx(0.8), "co_listening": 3.0}
    assert by_position[2].via == "x"
    assert set(by_position[1].sources) == {"taste", "trending"}
    # 3 was taken for taste after 2 went first; the duplicate did not use up taste's quota.
    assert sum("taste" in m.sources and m.position in (1, 3) for m in merged) == 2
    assert [m.position for m in merge_candidates([a, b, c], limit=3)] == [1, 2, 7]
    assert merge_candidates([]) == []


def test_full_path_is_deterministic(index: CatalogIndex, space: FeatureSpace) -> None:
    def run() -> list[tuple[int, tuple[str, ...]]]:
        sources = [
            taste_neighbours(space, index.features[2], n=50),
            co_listening_neighbours(index, [("t2", 1.0)], {"t2": [("t9", 2.0), ("t8", 1.0)]}),
            trending_candidates(index, [("t11", 1.0)]),
            popular_candidates(index, n=20),
        ]
        return [(m.position, tuple(sorted(m.sources))) for m in merge_candidates(sources, exclude={2})]

    first = run()
    assert first == run()
    assert len({p for p, _ in first}) == len(first) and 2 not in {p for p, _ in first}


def test_source_terms_are_bounded_by_their_weight() -> None:
    merged = [Candidate(0, {"co_listening": 4.0, "trending": -1.0}), Candidate(1, {"taste": 1.0}),
              Candidate(2, {"co_listening": 1.0})]
    terms = source_terms(merged)
    assert set(terms) == set(SOURCE_TERMS)
    assert terms["co_listening"].tolist() == pytest.approx([0.3, 0.0, 0.075])
    assert terms["trending"].tolist() == [0.0, 0.0, 0.0]  # negative trending earns nothing
    assert source_terms([])["co_listening"].shape == (0,)


def test_cluster_neighbours_cover_every_cluster(index: CatalogIndex, space: FeatureSpace) -> None:
    from ranking.diversity import taste_clusters

    low = np.argsort(index.features[:, 1])[:6]  # the calmest tracks
    high = np.argsort(-index.features[:, 1])[:6]  # the most energetic
    liked = np.concatenate([low, high])
    clusters = taste_clusters(space.z[liked])
    assert clusters.k == 2
    # The featureless track sits at the catalog mean, between both clusters: leave it out here.
    featureless = set(np.flatnonzero(~index.has_features).tolist())
    got = cluster_neighbours(space, clusters.centroids, n=20, exclude=set(liked.tolist()) | featureless)
    assert len(got) == 20 and len(set(got.positions.tolist())) == 20
    assert not set(got.positions.tolist()) & set(liked.tolist())
    sides = clusters.assign(space.z[got.positions])
    assert set(sides[:2].tolist()) == {0, 1}  # turns: the best of each cluster first
    assert abs(int((sides == 0).sum()) - 10) <= 3
    assert len(cluster_neighbours(space, np.zeros((0, 9), np.float32))) == 0
