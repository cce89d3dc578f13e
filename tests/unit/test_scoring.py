"""Ranking: online_models/catalog_index.py and online_models/scoring.py."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from online_models.catalog_index import CatalogIndex
from online_models.scoring import RANKING_WEIGHTS, ScoredTrack, cold_start, describe_taste, rank
from schemas.profile_codec import UserProfile
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, Track

GENRES = ("rock", "jazz", "edm")
# Distinct clusters: rock loud and energetic, jazz acoustic and instrumental, edm danceable and fast.
CENTRES = {
    "rock": dict(danceability=0.4, energy=0.9, valence=0.5, acousticness=0.1, instrumentalness=0.1,
                 liveness=0.3, speechiness=0.05, tempo=130.0, loudness=-5.0),
    "jazz": dict(danceability=0.3, energy=0.3, valence=0.4, acousticness=0.85, instrumentalness=0.8,
                 liveness=0.2, speechiness=0.05, tempo=90.0, loudness=-18.0),
    "edm": dict(danceability=0.9, energy=0.8, valence=0.7, acousticness=0.05, instrumentalness=0.6,
                liveness=0.1, speechiness=0.1, tempo=175.0, loudness=-4.0),
}
SPREAD = {"tempo": 5.0, "loudness": 1.0}


def jitter(rng: random.Random, centre: dict[str, float]) -> dict[str, float]:
    out = {}
    for name, value in centre.items():
        low, high = FEATURE_RANGES[name]
        spread = SPREAD.get(name, 0.04)
        out[name] = min(high, max(low, value + rng.uniform(-spread, spread)))
    return out


def make_catalog(per_genre: int = 20, seed: int = 1) -> list[Track]:
    rng = random.Random(seed)
    tracks = []
    for genre in GENRES:
        for i in range(per_genre):
            tracks.append(Track(
                track_id=f"{genre}-{i:02d}",
                title=f"{genre} song {i}",
                artist=f"{genre} artist {i % 4}",
                genres=[genre],
                popularity=rng.uniform(10, 95),
                **jitter(rng, CENTRES[genre]),
            ))
    return tracks


@pytest.fixture(scope="module")
def catalog() -> list[Track]:
    return make_catalog()


@pytest.fixture(scope="module")
def index(catalog: list[Track]) -> CatalogIndex:
    return CatalogIndex.build(catalog)


def centre_vector(genre: str) -> list[float]:
    vector = Track(track_id="c", **CENTRES[genre]).feature_vector()
    assert vector is not None
    return vector


def genre_of(track_id: str) -> str:
    return track_id.split("-")[0]


def rock_fan() -> UserProfile:
    return UserProfile("u", taste=centre_vector("rock"), taste_weight=5.0, genres={"rock": 3.0})


# -- CatalogIndex ------------------------------------------------------------------------------


def test_index_shapes_and_positions(index: CatalogIndex, catalog: list[Track]) -> None:
    assert len(index) == 60
    assert index.features.shape == (60, len(AUDIO_FEATURES))
    assert index.features.dtype == np.float32
    assert index.has_features.all()
    assert index.genre_names == list(GENRES)
    assert index.genre_matrix.shape == (60, 3)
    for t in catalog:
        i = index.position[t.track_id]
        assert index.tracks[i] is t
        assert index.features[i] == pytest.approx(t.feature_vector(), abs=1e-6)
        assert index.genre_matrix[i, index.genre_names.index(t.genres[0])] == 1.0
        assert index.popularity[i] == pytest.approx(t.popularity / 100, abs=1e-6)
        assert index.artist_names[index.artist_of[i]] == t.artist


def test_index_genre_rows_sum_to_one() -> None:
    tracks = [Track(track_id="a", genres=["rock", "pop", "indie"]), Track(track_id="b", genres=["pop"]),
              Track(track_id="c")]
    index = CatalogIndex.build(tracks)
    assert index.genre_matrix.sum(axis=1) == pytest.approx([1.0, 1.0, 0.0])
    assert index.genre_matrix[0] == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_tracks_without_features_get_the_catalog_mean() -> None:
    featured = make_catalog(per_genre=3)
    bare = [Track(track_id="bare-1", genres=["rock"]), Track(track_id="bare-2")]
    index = CatalogIndex.build([*featured, *bare])
    expected_mean = np.mean([t.feature_vector() for t in featured], axis=0)
    assert index.feature_mean == pytest.approx(expected_mean, abs=1e-6)
    for track_id in ("bare-1", "bare-2"):
        i = index.position[track_id]
        assert not index.has_features[i]
        assert index.features[i] == pytest.approx(expected_mean, abs=1e-6)
    assert index.has_features.sum() == len(featured)
    assert index.feature_std == pytest.approx(np.maximum(np.std([t.feature_vector() for t in featured],
                                                                axis=0), 1e-3), abs=1e-6)


def test_catalog_without_any_features_uses_half() -> None:
    index = CatalogIndex.build([Track(track_id="a"), Track(track_id="b")])
    assert index.features == pytest.approx(np.full((2, 9), 0.5))
    assert (index.feature_std > 0).all()


def test_unknown_popularity_counts_as_the_median() -> None:
    f = CENTRES["rock"]
    tracks = [Track(track_id="a", popularity=10, **f), Track(track_id="b", popularity=30, **f),
              Track(track_id="c", popularity=80, **f), Track(track_id="d", **f)]
    index = CatalogIndex.build(tracks)
    assert index.popularity[index.position["d"]] == pytest.approx(0.3)


def test_duplicate_track_ids_keep_the_latest() -> None:
    index = CatalogIndex.build([Track(track_id="a", title="old"), Track(track_id="b"),
                                Track(track_id="a", title="new")])
    assert len(index) == 2
    assert index.tracks[index.position["a"]].title == "new"


def test_empty_index() -> None:
    index = CatalogIndex.build([])
    assert len(index) == 0
    assert index.features.shape == (0, 9)


# -- rank --------------------------------------------------------------------------------------


def test_rock_fan_gets_rock(index: CatalogIndex) -> None:
    ranked = rank(index, rock_fan(), k=10)
    assert len(ranked) == 10
    assert [genre_of(r.track_id) for r in ranked] == ["rock"] * 10


def test_taste_alone_finds_the_cluster(index: CatalogIndex) -> None:
    for genre in GENRES:
        profile = UserProfile("u", taste=centre_vector(genre), taste_weight=1.0)
        ranked = rank(index, profile, k=10)
        assert sum(genre_of(r.track_id) == genre for r in ranked) >= 9


def test_genre_affinity_alone_finds_the_genre(index: CatalogIndex) -> None:
    ranked = rank(index, UserProfile("u", genres={"jazz": 2.0}), k=20)
    assert {genre_of(r.track_id) for r in ranked} == {"jazz"}


def test_ranked_best_first_with_scores(index: CatalogIndex) -> None:
    ranked = rank(index, rock_fan(), k=60)
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(r, ScoredTrack) for r in ranked)
    assert all(index.tracks[r.position].track_id == r.track_id for r in ranked)


def test_score_formula_without_taste() -> None:
    f = CENTRES["rock"]
    index = CatalogIndex.build([Track(track_id="a", artist="A", genres=["rock"], popularity=40, **f),
                                Track(track_id="b", artist="B", genres=["jazz"], popularity=90, **f)])
    profile = UserProfile("u", genres={"rock": 2.0}, artists={"A": -1.0})
    by_id = {r.track_id: r.score for r in rank(index, profile, k=2)}
    w = RANKING_WEIGHTS
    assert by_id["a"] == pytest.approx(
        w.genre * math.tanh(1.0) + w.artist * math.tanh(-0.5) + w.popularity * 0.4, abs=1e-5)
    assert by_id["b"] == pytest.approx(w.popularity * 0.9, abs=1e-5)


def test_excluded_ids_never_appear(index: CatalogIndex) -> None:
    top = [r.track_id for r in rank(index, rock_fan(), k=15)]
    excluded = {*top, "not-in-catalog"}
    ranked = rank(index, rock_fan(), k=60, exclude=excluded)
    ids = [r.track_id for r in ranked]
    assert not excluded & set(ids)
    assert len(ids) == 60 - 15
    assert len(set(ids)) == len(ids)


def test_excluding_everything_gives_nothing(index: CatalogIndex, catalog: list[Track]) -> None:
    assert rank(index, rock_fan(), k=10, exclude=[t.track_id for t in catalog]) == []


def test_k_larger_than_catalog(index: CatalogIndex) -> None:
    ranked = rank(index, rock_fan(), k=1000)
    assert len(ranked) == 60
    assert {r.track_id for r in ranked} == set(index.position)


@pytest.mark.parametrize("k", [0, -3])
def test_non_positive_k_gives_nothing(index: CatalogIndex, k: int) -> None:
    assert rank(index, rock_fan(), k=k) == []


def test_empty_catalog_rank_and_cold_start() -> None:
    index = CatalogIndex.build([])
    assert rank(index, rock_fan(), k=5) == []
    assert cold_start(index, k=5) == []


def test_negative_artist_affinity_pushes_the_artist_down(index: CatalogIndex) -> None:
    disliked = "rock artist 0"
    baseline = rank(index, rock_fan(), k=60)
    profile = rock_fan()
    profile.artists[disliked] = -5.0
    ranked = rank(index, profile, k=60)

    def artist(r: ScoredTrack) -> str:
        return index.tracks[r.position].artist

    def positions(items: list[ScoredTrack]) -> list[int]:
        return [n for n, r in enumerate(items) if artist(r) == disliked]

    assert sum(positions(ranked)) > sum(positions(baseline))
    # Now below every other rock track.
    rock = [r for r in ranked if genre_of(r.track_id) == "rock"]
    assert {artist(r) for r in rock[-5:]} == {disliked}
    penalty = RANKING_WEIGHTS.artist * math.tanh(-5.0 / RANKING_WEIGHTS.affinity_scale)
    before = {r.track_id: r.score for r in baseline}
    for r in ranked:
        if artist(r) == disliked:
            assert r.score == pytest.approx(before[r.track_id] + penalty, abs=1e-5)
        else:
            assert r.score == pytest.approx(before[r.track_id], abs=1e-6)


def test_positive_artist_affinity_lifts_the_artist(index: CatalogIndex) -> None:
    profile = UserProfile("u", artists={"jazz artist 2": 4.0})
    ranked = rank(index, profile, k=5)
    assert {index.tracks[r.position].artist for r in ranked} == {"jazz artist 2"}
    assert all("you listen to jazz artist 2" in r.reasons for r in ranked)


# -- reasons -----------------------------------------------------------------------------------


def test_reasons_are_non_empty_human_strings(index: CatalogIndex) -> None:
    for profile in (rock_fan(), UserProfile("u"), UserProfile("u", genres={"edm": -3.0})):
        for r in rank(index, profile, k=60):
            assert r.reasons
            for reason in r.reasons:
                assert isinstance(reason, str)
                assert reason.strip() == reason and len(reason) > 5
                assert "_" not in reason and "{" not in reason


def test_reasons_mention_the_liked_genre(index: CatalogIndex) -> None:
    ranked = rank(index, UserProfile("u", genres={"rock": 3.0, "jazz": 0.5}), k=5)
    assert all(genre_of(r.track_id) == "rock" for r in ranked)
    assert all(r.reasons[0] == "you like rock" for r in ranked)


def test_reasons_describe_a_matching_taste(index: CatalogIndex) -> None:
    ranked = rank(index, rock_fan(), k=3)
    for r in ranked:
        assert "you like rock" in r.reasons
        assert any(reason.startswith("matches your ") or reason == "close to your audio taste"
                   for reason in r.reasons)


def test_disliked_genre_is_never_a_reason(index: CatalogIndex) -> None:
    ranked = rank(index, UserProfile("u", genres={"edm": -3.0}), k=60)
    assert not any("you like edm" in reason for r in ranked for reason in r.reasons)


def test_no_signal_falls_back_to_popularity_reason(index: CatalogIndex) -> None:
    ranked = rank(index, UserProfile("u"), k=5)
    for r in ranked:
        assert r.reasons == [f"popular in {genre_of(r.track_id)}"]
    # With nothing known, the ranking is by popularity.
    pops = [float(index.popularity[r.position]) for r in ranked]
    assert pops == sorted(pops, reverse=True)
    assert pops[0] == pytest.approx(float(index.popularity.max()))


def test_describe_taste_names_the_standout_features(index: CatalogIndex) -> None:
    words = describe_taste(index, centre_vector("jazz"))
    assert 1 <= len(words) <= 2
    known = {w for pair in [("acoustic", "electronic"), ("instrumental", "vocal"), ("calm", "high-energy"),
                            ("quiet", "loud"), ("slow", "fast"), ("laid-back rhythm", "danceable"),
                            ("moody", "upbeat"), ("live-sounding", "studio"), ("wordy", "melodic")]
             for w in pair}
    assert set(words) <= known
    assert describe_taste(index, list(index.feature_mean)) == []


# -- cold start --------------------------------------------------------------------------------


def most_popular(catalog: list[Track], genre: str, skip: set[str] = frozenset()) -> list[str]:
    tracks = [t for t in catalog if t.genres[0] == genre and t.track_id not in skip]
    return [t.track_id for t in sorted(tracks, key=lambda t: -(t.popularity or 0))]


def test_cold_start_takes_turns_across_genres(index: CatalogIndex, catalog: list[Track]) -> None:
    picked = cold_start(index, k=3)
    assert len(picked) == 3
    assert sorted(genre_of(p.track_id) for p in picked) == sorted(GENRES)
    assert {p.track_id for p in picked} == {most_popular(catalog, g)[0] for g in GENRES}
    scores = [p.score for p in picked]
    assert scores == sorted(scores, reverse=True)
    for p in picked:
        assert p.reasons == [f"popular in {genre_of(p.track_id)}"]


def test_cold_start_two_rounds(index: CatalogIndex, catalog: list[Track]) -> None:
    picked = {p.track_id for p in cold_start(index, k=6)}
    assert picked == {tid for g in GENRES for tid in most_popular(catalog, g)[:2]}


def test_cold_start_excludes(index: CatalogIndex, catalog: list[Track]) -> None:
    excluded = {most_popular(catalog, "rock")[0], most_popular(catalog, "jazz")[0]}
    picked = {p.track_id for p in cold_start(index, k=3, exclude=excluded)}
    assert not picked & excluded
    assert picked == {most_popular(catalog, g, excluded)[0] for g in GENRES}


def test_cold_start_small_k_picks_the_most_popular_heads() -> None:
    tracks = [Track(track_id="r1", genres=["rock"], popularity=90), Track(track_id="r2", genres=["rock"],
              popularity=85), Track(track_id="j1", genres=["jazz"], popularity=40),
              Track(track_id="x", popularity=60)]
    index = CatalogIndex.build(tracks)
    assert [p.track_id for p in cold_start(index, k=1)] == ["r1"]
    assert [p.track_id for p in cold_start(index, k=3)] == ["r1", "x", "j1"]
    assert [p.track_id for p in cold_start(index, k=10)] == ["r1", "r2", "x", "j1"]
    assert cold_start(index, k=3)[1].reasons == ["popular in the catalog"]
    assert cold_start(index, k=0) == []
