"""Moods, activities, time of day and discovery: online_models/moods.py."""

from __future__ import annotations

import numpy as np
import pytest

from ranking import moods
from ranking.config import RANKING_CONFIG
from schemas.tracks import AUDIO_FEATURES, Track


def scaled(**raw: float) -> np.ndarray:
    """A scaled feature vector from raw values, the rest at a middling default."""
    base = dict(danceability=0.5, energy=0.5, valence=0.5, acousticness=0.3, instrumentalness=0.1,
                liveness=0.15, speechiness=0.06, tempo=115.0, loudness=-8.0)
    base.update(raw)
    return np.asarray(Track(track_id="t", **base).feature_vector(), dtype=np.float32)


LULLABY = scaled(energy=0.12, acousticness=0.85, instrumentalness=0.7, tempo=78.0, loudness=-21.0,
                 valence=0.3, danceability=0.3, speechiness=0.03)
BANGER = scaled(energy=0.93, danceability=0.82, tempo=128.0, loudness=-4.0, valence=0.75,
                acousticness=0.03)
SPRINT = scaled(energy=0.92, tempo=168.0, danceability=0.65, loudness=-5.0)
BALLAD = scaled(valence=0.15, energy=0.3, acousticness=0.6, tempo=92.0)
STUDY = scaled(instrumentalness=0.8, speechiness=0.03, energy=0.35)
ROWS = np.stack([LULLABY, BANGER, SPRINT, BALLAD, STUDY])
NAMES = ["lullaby", "banger", "sprint", "ballad", "study"]


@pytest.mark.parametrize(
    ("mood", "activity", "best"),
    [
        ("party", None, "banger"),
        ("energetic", None, {"banger", "sprint"}),
        ("melancholic", None, "ballad"),
        ("focused", None, "study"),
        (None, "sleeping", "lullaby"),
        (None, "running", "sprint"),
        (None, "studying", "study"),
        ("sad", None, "ballad"),
        ("Working Out", None, {"banger", "sprint"}),
        ("chill", "relaxing", {"lullaby", "ballad"}),
    ],
)
def test_targets_pick_the_fitting_track(
    mood: str | None, activity: str | None, best: str | set[str]
) -> None:
    target = moods.resolve_target(mood=mood, activity=activity)
    assert target is not None
    fit = moods.mood_fit(ROWS, target)
    assert NAMES[int(np.argmax(fit))] in ({best} if isinstance(best, str) else best)
    assert NAMES[int(np.argmin(fit))] not in ({best} if isinstance(best, str) else best)
    assert np.all((fit > 0) & (fit <= 1))


def test_every_table_entry_is_valid() -> None:
    for table in (moods.MOODS, moods.ACTIVITIES, moods.TIMES_OF_DAY):
        for name, spec in table.items():
            assert spec, name
            for feature, (value, weight) in spec.items():
                assert feature in AUDIO_FEATURES and 0 <= value <= 1 and 0 < weight <= 1, (name, feature)
    for alias, name in moods.ALIASES.items():
        assert name in moods.MOODS or name in moods.ACTIVITIES, alias
    required = {"energetic", "chill", "happy", "melancholic", "party", "focused", "romantic", "workout"}
    assert required <= set(moods.MOODS)
    assert {"running", "studying", "commuting", "sleeping", "cooking", "working_out", "relaxing"} <= set(
        moods.ACTIVITIES
    )


def test_labels_and_weights() -> None:
    chill = moods.resolve_target(mood="chill")
    run = moods.resolve_target(activity="run")
    both = moods.resolve_target(mood="happy", activity="cooking")
    assert chill is not None and run is not None and both is not None
    assert chill.label == "fits your chill mood" and chill.score_weight == RANKING_CONFIG.mood
    assert run.label == "good for running"
    assert both.name == "happy+cooking" and both.label == "fits your happy mood and good for cooking"
    valence = AUDIO_FEATURES.index("valence")
    # Merged: weights add, the target is their weighted mean.
    assert both.weight[valence] == pytest.approx(1.0 + 0.6)
    assert both.target[valence] == pytest.approx((0.85 * 1.0 + 0.7 * 0.6) / 1.6)


@pytest.mark.parametrize(
    ("hour", "name"),
    [(0, "night"), (4, "night"), (5, "morning"), (11, "morning"), (12, "afternoon"), (16, "afternoon"),
     (17, "evening"), (21, "evening"), (22, "night"), (23, "night"), (29, "morning")],
)
def test_time_of_day(hour: int, name: str) -> None:
    assert moods.time_of_day(hour) == name
    target = moods.resolve_target(hour=hour)
    assert target is not None and target.name == name and target.score_weight == RANKING_CONFIG.time_of_day


def test_explicit_mood_wins_over_time_and_unknown_falls_back() -> None:
    assert moods.resolve_target(mood="party", hour=3).name == "party"
    assert moods.resolve_target(mood="zzz", hour=3).name == "night"
    assert moods.resolve_target() is None
    assert moods.mood_term(ROWS, None).tolist() == [0.0] * 5
    night = moods.resolve_target(hour=2)
    term = moods.mood_term(ROWS, night)
    assert NAMES[int(np.argmax(term))] in {"lullaby", "ballad", "study"}
    assert term.max() <= RANKING_CONFIG.time_of_day


def test_fit_formula() -> None:
    target = moods.resolve_target(mood="happy")
    assert target is not None
    exact = target.target.copy()
    assert moods.mood_fit(exact[None, :], target)[0] == pytest.approx(1.0)
    off = np.where(target.weight > 0, target.target - 0.2, target.target)
    assert moods.mood_fit(off[None, :], target)[0] == pytest.approx(np.exp(-0.5), rel=1e-5)


def test_discovery() -> None:
    popularity = np.array([0.9, 0.1, 0.1])
    taste_fit = np.array([1.0, 1.0, 0.3])
    assert moods.discovery_term(popularity, taste_fit, 0.0).tolist() == [0.0, 0.0, 0.0]
    term = moods.discovery_term(popularity, taste_fit, 1.0)
    assert term[1] > term[0] and term[1] > term[2]  # obscure and close to the taste wins
    assert term[1] == pytest.approx(RANKING_CONFIG.discovery * 0.9)
    half = moods.discovery_term(popularity, taste_fit, 0.5, popularity_weight=0.15)
    assert half[0] == pytest.approx(0.5 * (0.5 * 0.1 - 0.15 * 0.9))
    assert moods.discovery_term(popularity, taste_fit, 7.0).tolist() == term.tolist()  # clipped to 1
