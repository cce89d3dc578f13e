"""Ranking: online_models/catalog_index.py and online_models/scoring.py."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from ranking.catalog_index import CatalogIndex
from ranking.catalog_view import CatalogView
from ranking.config import RANKING_CONFIG
from ranking.pipeline import RecommendRequest, gather, pick, score
from ranking.scoring import describe_taste
from ranking.sources import Signals
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


def recommend(index: CatalogIndex, profile: UserProfile, k: int, exclude: frozenset[str] = frozenset()
              ) -> list[tuple[str, float, list[str]]]:
    """The live pipeline (no diversity, no artist cap): `(track_id, score, reasons)` best first."""
    view = CatalogView.from_index(index)
    request = RecommendRequest(k=k, now_ms=1_795_248_000_000, diversity=0.0, exclude=exclude)
    scored = score(view, profile, None, gather(view, profile, None, Signals(), request), Signals(), request)
    return [(t.track_id, t.score, t.reasons)
            for t in pick(view, profile, scored, request, diversify_list=False, max_per_artist=None)]


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


# -- the live pipeline on clustered tracks ------------------------------------------------------


def test_rock_fan_gets_rock(index: CatalogIndex) -> None:
    assert all(genre_of(t) == "rock" for t, _, _ in recommend(index, rock_fan(), k=10))


def test_excluded_ids_never_appear(index: CatalogIndex) -> None:
    top = [t for t, _, _ in recommend(index, rock_fan(), k=15)]
    excluded = frozenset(top[:5])
    assert not {t for t, _, _ in recommend(index, rock_fan(), k=60, exclude=excluded)} & excluded


def test_negative_artist_affinity_pushes_the_artist_down(index: CatalogIndex) -> None:
    disliked = "rock artist 0"
    baseline = {t: s for t, s, _ in recommend(index, rock_fan(), k=60)}
    profile = rock_fan()
    profile.artists[disliked] = -0.5  # above the exclusion threshold: scored down, not left out
    ranked = recommend(index, profile, k=60)
    penalty = RANKING_CONFIG.artist_disliked * math.tanh(-0.5 / RANKING_CONFIG.affinity_scale)
    assert penalty < 0
    for track_id, value, _ in ranked:
        if index.tracks[index.position[track_id]].artist == disliked:
            assert value == pytest.approx(baseline[track_id] + penalty, abs=1e-5)
        else:
            assert value == pytest.approx(baseline[track_id], abs=1e-5)
    profile.artists[disliked] = -5.0  # a clear dislike: the artist is left out
    ranked = recommend(index, profile, 60)
    assert all(index.tracks[index.position[t]].artist != disliked for t, _, _ in ranked)


def test_reasons_are_non_empty_human_strings(index: CatalogIndex) -> None:
    for profile in (rock_fan(), UserProfile("u"), UserProfile("u", genres={"edm": -3.0})):
        for _, _, reasons in recommend(index, profile, k=60):
            assert reasons
            for reason in reasons:
                assert reason.strip() == reason and len(reason) > 5
                assert "_" not in reason and "{" not in reason


def test_disliked_genre_is_never_a_reason(index: CatalogIndex) -> None:
    ranked = recommend(index, UserProfile("u", genres={"edm": -3.0}), k=60)
    assert not any("you like edm" in reason for _, _, reasons in ranked for reason in reasons)


def test_describe_taste_names_the_standout_features(index: CatalogIndex) -> None:
    words = describe_taste(index, centre_vector("jazz"))
    assert 1 <= len(words) <= 2
    known = {w for pair in [("acoustic", "electronic"), ("instrumental", "vocal"), ("calm", "high-energy"),
                            ("quiet", "loud"), ("slow", "fast"), ("laid-back rhythm", "danceable"),
                            ("moody", "upbeat"), ("live-sounding", "studio"), ("wordy", "melodic")]
             for w in pair}
    assert set(words) <= known
    assert describe_taste(index, list(index.feature_mean)) == []

