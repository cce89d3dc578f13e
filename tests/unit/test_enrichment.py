"""Audio-feature enrichment from text: online_models/enrichment.py."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from online_models.enrichment import AudioFeatureRegressor, hashed_text, resolve_track, text_tokens
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, Track

ROOT = Path(__file__).resolve().parents[2]
CATALOG = read_spotify_csv(DEFAULT_SAMPLE)


def split(tracks: list[Track], seed: int = 0) -> tuple[list[Track], list[Track]]:
    shuffled = tracks[:]
    random.Random(seed).shuffle(shuffled)
    cut = int(0.8 * len(shuffled))
    return shuffled[:cut], shuffled[cut:]


def mae_table(tracks: list[Track], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(model MAE, training-mean MAE) per feature, in scaled [0, 1] units, one online pass."""
    train, test = split(tracks, seed)
    model = AudioFeatureRegressor()
    for t in train:
        assert model.learn_one(t)
    truth = np.array([t.feature_vector() for t in test])
    mean = np.array([t.feature_vector() for t in train]).mean(axis=0)
    predicted = np.array([model.predict_vector(t.model_copy(update=dict.fromkeys(AUDIO_FEATURES)))
                          for t in test])
    return np.abs(predicted - truth).mean(axis=0), np.abs(mean - truth).mean(axis=0)


def test_beats_the_training_mean_on_the_shipped_sample() -> None:
    model_mae, mean_mae = mae_table(CATALOG)
    by_name = dict(zip(AUDIO_FEATURES, model_mae / mean_mae, strict=True))
    assert by_name["energy"] < 0.97
    assert by_name["acousticness"] < 0.97
    assert (model_mae / mean_mae).mean() < 0.97
    assert sum(ratio < 1 for ratio in by_name.values()) >= 7


def test_predictions_are_valid_marked_tracks() -> None:
    model = AudioFeatureRegressor()
    for t in CATALOG[:300]:
        model.learn_one(t)
    bare = Track(track_id="new", title="Some Remix (Live)", artist="Nobody Known", genres=["edm", "pop"])
    enriched = model.enrich(bare)
    assert enriched.features_predicted and enriched.has_features
    assert Track.model_validate(enriched.model_dump()) == enriched
    for name in AUDIO_FEATURES:
        low, high = FEATURE_RANGES[name]
        assert low <= getattr(enriched, name) <= high
    assert (enriched.track_id, enriched.title, enriched.genres) == (bare.track_id, bare.title, bare.genres)
    # A track with measured features is left alone.
    assert model.enrich(CATALOG[0]) is CATALOG[0]


def test_an_untrained_model_predicts_mid_range() -> None:
    prediction = AudioFeatureRegressor().predict_one(Track(track_id="x", genres=["rock"]))
    assert prediction == {name: (low + high) / 2 for name, (low, high) in FEATURE_RANGES.items()}


def test_predicted_features_are_never_learned_from() -> None:
    model = AudioFeatureRegressor()
    predicted = CATALOG[0].model_copy(update={"features_predicted": True})
    assert not model.learn_one(predicted)
    assert not model.learn_one(Track(track_id="bare", genres=["rock"]))
    assert model.n_learned == 0 and not model.weights.any()


def test_measured_features_replace_predicted_ones_and_are_kept_over_later_bare_upserts() -> None:
    model = AudioFeatureRegressor()
    for t in CATALOG[:200]:
        model.learn_one(t)
    measured = CATALOG[300]
    bare = measured.model_copy(update={**dict.fromkeys(AUDIO_FEATURES), "features_predicted": False})

    first = resolve_track(bare, None, model)
    assert first.features_predicted
    second = resolve_track(measured, first, model)
    assert second == measured and not second.features_predicted
    assert model.n_learned == 201  # it learned from the measured arrival
    renamed = bare.model_copy(update={"title": "New title"})
    third = resolve_track(renamed, second, model)
    assert third.title == "New title" and not third.features_predicted
    assert third.feature_vector() == measured.feature_vector()


def test_same_data_same_predictions() -> None:
    a, b = AudioFeatureRegressor(), AudioFeatureRegressor()
    for t in CATALOG[:200]:
        a.learn_one(t)
        b.learn_one(t)
    probe = [t.model_copy(update=dict.fromkeys(AUDIO_FEATURES)) for t in CATALOG[200:260]]
    assert [a.predict_vector(t) for t in probe] == [b.predict_vector(t) for t in probe]


def test_text_tokens_and_hashing() -> None:
    t = Track(track_id="x", title="Heaven - Remix", artist="Avicii", genres=["dance pop", "edm"])
    artist, genres, title = text_tokens(t)
    assert artist[0] == "a:avicii" and "a3:avi" in artist and "a3:cii" in artist
    assert genres == ["g:dance pop", "g:edm", "gw:dance", "gw:pop", "gw:edm"]
    assert title == ["t:heaven", "t:remix"]
    slots, values = hashed_text(t)
    assert list(slots) == sorted(set(slots))
    # Each group has unit L2 norm before collisions; the three groups sum to a norm near √3.
    assert np.linalg.norm(values) == pytest.approx(np.sqrt(3), rel=0.05)
    assert text_tokens(Track(track_id="y")) == []


def test_hashing_does_not_depend_on_python_hash_seed() -> None:
    code = (
        "from online_models.enrichment import hashed_text; from schemas.tracks import Track;"
        "print(hashed_text(Track(track_id='x', title='Song', artist='Band', genres=['rock']))[0].tolist())"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "1", "2")
    }
    assert len(outputs) == 1
