"""Features of (event, track): online_models/context_features.py."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, optim

from online_models import context_features as cf
from schemas.events import Event, EventContext
from schemas.tracks import AUDIO_FEATURES, FEATURE_RANGES, Track

T0 = 1_795_248_000_000  # 2026-11-21T08:00:00Z
HOUR = 3_600_000
ROOT = Path(__file__).resolve().parents[2]


def track(track_id: str = "t", genres: tuple[str, ...] = ("rock",), predicted: bool = False,
          **features: float) -> Track:
    base = dict(danceability=0.5, energy=0.9, valence=0.4, acousticness=0.1, instrumentalness=0.0,
                liveness=0.2, speechiness=0.05, tempo=125.0, loudness=-6.0)
    base.update(features)
    return Track(track_id=track_id, genres=list(genres), features_predicted=predicted, **base)


def event(ts: int = T0, **context: str) -> Event:
    return Event(event_id="e", user_id="u", track_id="t", type="like", ts=ts,
                 context=context or None)


def test_layout_is_fixed_and_documented() -> None:
    assert cf.DIM == 77 == len(cf.FEATURE_NAMES) == len(set(cf.FEATURE_NAMES))
    assert cf.FEATURE_NAMES[:9] == tuple(f"audio:{name}" for name in AUDIO_FEATURES)
    assert (cf.MISSING_INDEX, cf.PREDICTED_INDEX, cf.GENRE_OFFSET, cf.TOD_OFFSET) == (9, 10, 11, 27)
    assert [cf.CONTEXT_OFFSET[f] for f in ("source", "device", "mood", "activity")] == [33, 37, 41, 45]
    assert cf.TRACK_DIM == 27
    assert cf.INTERACTION_OFFSET == 49
    assert cf.FEATURE_NAMES[49] == "energy×tod:00-04"
    assert cf.FEATURE_NAMES[-1] == "valence×activity:3"
    assert len(cf.CONTEXT_SLOTS) == 14
    # The per-user weights (plus the intercept) fit the 400-byte budget as float32.
    assert 4 * (cf.DIM + 1) <= 400


def test_audio_features_are_the_scaled_vector_centred() -> None:
    t = track()
    x = cf.encode(event(), t)
    expected = np.asarray(t.feature_vector(), dtype=np.float32) - np.float32(0.5)
    np.testing.assert_allclose(x[:9], expected, atol=1e-7)
    assert x[cf.MISSING_INDEX] == 0 and x[cf.PREDICTED_INDEX] == 0


def test_unknown_track_and_track_without_features_are_flagged_and_neutral() -> None:
    for t in (None, Track(track_id="t", genres=["rock"])):
        x = cf.encode(event(), t)
        assert x[cf.MISSING_INDEX] == 1.0
        assert not x[:9].any()
        assert not x[cf.INTERACTION_OFFSET:].any()


def test_predicted_features_are_flagged() -> None:
    assert cf.encode(event(), track(predicted=True))[cf.PREDICTED_INDEX] == 1.0


def test_genre_buckets_use_blake2b_and_share_unit_norm() -> None:
    genres = ("rock", "album rock", "hard rock")
    x = cf.encode(event(), track(genres=genres))
    block = x[cf.GENRE_OFFSET : cf.GENRE_OFFSET + cf.GENRE_BUCKETS]
    expected = np.zeros(cf.GENRE_BUCKETS)
    for genre in genres:
        digest = hashlib.blake2b(f"genre={genre}".encode(), digest_size=8).digest()
        expected[int.from_bytes(digest, "little") % 16] += 1 / math.sqrt(3)
    np.testing.assert_allclose(block, expected, atol=1e-6)


@pytest.mark.parametrize(("hour", "bucket"), [(0, 0), (3, 0), (4, 1), (8, 2), (13, 3), (19, 4), (23, 5)])
def test_time_of_day_bucket_is_the_utc_hour_by_four(hour: int, bucket: int) -> None:
    midnight = T0 - 8 * HOUR
    ts = midnight + hour * HOUR + 59 * 60_000
    assert cf.tod_bucket(ts) == bucket
    x = cf.encode(event(ts=ts), track())
    tod = x[cf.TOD_OFFSET : cf.TOD_OFFSET + 6]
    assert tod.tolist() == [1.0 if b == bucket else 0.0 for b in range(6)]


def test_context_values_are_one_hot_case_insensitive_and_absent_is_zero() -> None:
    a = cf.encode(event(mood="Chill ", activity="workout", source="radio", device="phone"), track())
    b = cf.encode(event(mood="chill", activity="WORKOUT", source="radio", device="phone"), track())
    np.testing.assert_array_equal(a, b)
    for field in ("source", "device", "mood", "activity"):
        block = a[cf.CONTEXT_OFFSET[field] : cf.CONTEXT_OFFSET[field] + 4]
        assert block.sum() == 1.0 and set(block.tolist()) == {0.0, 1.0}
    bare = cf.encode(event(), track())
    assert not bare[cf.CONTEXT_OFFSET["source"] : cf.INTERACTION_OFFSET].any()


def test_interactions_cross_centred_energy_and_valence_with_tod_mood_activity() -> None:
    t = track(energy=0.9, valence=0.2)
    x = cf.encode_dict(event(mood="happy"), t)
    mood_slot = next(k for k in x if k.startswith("mood:"))
    assert x[f"energy×{mood_slot}"] == pytest.approx(0.4)
    assert x[f"valence×{mood_slot}"] == pytest.approx(-0.3)
    assert x["energy×tod:08-12"] == pytest.approx(0.4)
    assert not any(k.startswith("energy×source") or k.startswith("energy×device") for k in cf.FEATURE_NAMES)


labels = st.one_of(st.none(), st.sampled_from(["chill", "workout", "focus", "party", "Radio", "car"]))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=7, max_size=7),
    st.floats(0, 250), st.floats(-60, 0),
    st.lists(st.sampled_from(["rock", "pop", "edm", "dance pop", "jazz", "trap"]), max_size=5),
    st.integers(946_684_800_000, 4_000_000_000_000),
    labels, labels, labels, labels, st.booleans(),
)
def test_sparse_dict_and_dense_forms_agree(unit, tempo, loudness, genres, ts, source, device, mood,
                                           activity, has_features) -> None:
    features = dict(zip(["danceability", "energy", "valence", "acousticness", "instrumentalness",
                         "liveness", "speechiness"], unit, strict=True), tempo=tempo, loudness=loudness)
    t = Track(track_id="t", genres=genres, **(features if has_features else {}))
    e = Event(event_id="e", user_id="u", track_id="t", type="play", ts=ts,
              context=EventContext(source=source, device=device, mood=mood, activity=activity))
    sparse = cf.encode_sparse(e, t)
    indices = [i for i, _ in sparse]
    assert indices == sorted(set(indices)), "indices increasing, each once"
    dense = cf.encode(e, t)
    assert dense.shape == (cf.DIM,) and dense.dtype == np.float32
    assert np.all(np.abs(dense) <= 1.0 + 1e-6)
    as_dict = cf.encode_dict(e, t)
    np.testing.assert_allclose(dense, [as_dict.get(n, 0.0) for n in cf.FEATURE_NAMES], atol=1e-7)
    # The split serving form: track block + context block.
    np.testing.assert_allclose(dense[: cf.TRACK_DIM], cf.track_matrix([t])[0], atol=1e-7)
    np.testing.assert_allclose(dense[cf.TRACK_DIM : cf.INTERACTION_OFFSET],
                               cf.context_vector(ts, e.context)[: cf.INTERACTION_OFFSET - cf.TRACK_DIM])


def _random_catalog(n: int, rng: random.Random) -> list[Track]:
    genres = ["rock", "pop", "edm", "rap", "latin", "r&b", "jazz", "dance pop"]
    tracks = []
    for i in range(n):
        f = {name: rng.uniform(*FEATURE_RANGES[name]) for name in AUDIO_FEATURES}
        tracks.append(Track(track_id=f"t{i}", genres=rng.sample(genres, rng.randint(0, 3)),
                            features_predicted=rng.random() < 0.1, **f))
    return tracks


def _river_weights_as_array(model: linear_model.LogisticRegression) -> np.ndarray:
    w = np.zeros(cf.DIM + 1, dtype=np.float32)
    for name, value in model.weights.items():
        w[cf.INDEX[name]] = value
    w[-1] = model.intercept
    return w


def test_river_prediction_equals_numpy_dot_and_sigmoid() -> None:
    rng = random.Random(7)
    catalog = _random_catalog(200, rng)
    moods = [None, "chill", "workout", "party"]
    model = linear_model.LogisticRegression(optimizer=optim.SGD(0.2), intercept_lr=0.05)
    events = []
    for i in range(1500):
        t = rng.choice(catalog)
        e = Event(event_id=f"e{i}", user_id="u", track_id=t.track_id, type="like",
                  ts=T0 + rng.randrange(0, 7 * 24) * HOUR,
                  context=EventContext(mood=rng.choice(moods), device=rng.choice([None, "phone"])))
        liked = (t.energy > 0.6) == (e.context.mood != "chill")
        model.learn_one(cf.encode_dict(e, t), liked)
        events.append((e, t))
    w = _river_weights_as_array(model)
    assert np.abs(w[:-1]).max() > 0.1, "the model learned something"
    for e, t in events[-300:]:
        river_p = model.predict_proba_one(cf.encode_dict(e, t))[True]
        numpy_p = 1.0 / (1.0 + math.exp(-float(w[:-1] @ cf.encode(e, t) + w[-1])))
        assert numpy_p == pytest.approx(river_p, abs=1e-6)

    # The serving form scores a whole candidate matrix in one request's context at once.
    request = Event(event_id="r", user_id="u", track_id="x", type="play", ts=T0 + 20 * HOUR,
                    context=EventContext(mood="workout", activity="run"))
    scores = cf.score_tracks(w, cf.track_matrix(catalog), cf.context_vector(request.ts, request.context))
    one_by_one = [model.predict_proba_one(cf.encode_dict(request, t))[True] for t in catalog]
    np.testing.assert_allclose(scores, one_by_one, atol=1e-6)


def test_score_tracks_refuses_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        cf.score_tracks(np.zeros(cf.DIM), np.zeros((1, cf.TRACK_DIM)), np.zeros(cf.DIM - cf.TRACK_DIM))
    with pytest.raises(ValueError):
        cf.score_tracks(np.zeros(cf.DIM + 1), np.zeros((1, cf.TRACK_DIM)), np.zeros(3))


def test_encoding_does_not_depend_on_python_hash_seed() -> None:
    code = (
        "import json; from online_models.context_features import encode_sparse;"
        "from schemas.events import Event; from schemas.tracks import Track;"
        "t = Track(track_id='t', genres=['rock', 'dance pop', 'k-pop']);"
        "e = Event(event_id='e', user_id='u', track_id='t', type='like', ts=1795248000000,"
        " context={'mood': 'chill', 'activity': 'focus', 'source': 'radio', 'device': 'car'});"
        "print(json.dumps(encode_sparse(e, t)))"
    )
    outputs = set()
    for seed in ("1", "2", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                cwd=ROOT, check=True)
        outputs.add(result.stdout)
    assert len(outputs) == 1
    assert len(json.loads(outputs.pop())) >= 6
