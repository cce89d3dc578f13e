"""The per-user engagement model: online_models/user_model.py (and its learner, logistic.py)."""

from __future__ import annotations

import math
import pickle
import random
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import linear_model, optim

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from online_models.context_features import DIM, encode, encode_dict, encode_sparse
from online_models.logistic import OnlineLogisticRegression
from online_models.user_model import (
    MIN_SIGNAL,
    WEIGHTS_BYTES,
    UserModel,
    UserModelConfig,
    engagement_label,
)
from schemas.events import Event
from schemas.tracks import Track

T0 = 1_795_248_000_000
CATALOG = read_spotify_csv(DEFAULT_SAMPLE)


def ev(i: int, type_: str, track: Track, **fields) -> Event:
    return Event(event_id=f"e{i}", user_id="u", track_id=track.track_id, type=type_, ts=T0 + i * 60_000,
                 **fields)


def listener(seed: int, n: int, likes=lambda t: t.energy > 0.7) -> list[tuple[Event, Track]]:
    """A listener who completes or likes what `likes` says, and skips early or dislikes the rest."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = rng.choice(CATALOG)
        positive = likes(t) != (rng.random() < 0.1)  # 10 % noise
        if positive:
            out.append((ev(i, rng.choice(["like", "complete"]), t), t))
        else:
            out.append((ev(i, "skip", t, position_ms=8_000, duration_ms=200_000) if rng.random() < 0.7
                        else ev(i, "dislike", t), t))
    return out


@pytest.mark.parametrize(
    ("type_", "fields", "expected"),
    [
        ("like", {}, (1, 1.0)),
        ("complete", {}, (1, 0.6)),
        ("dislike", {}, (0, 1.0)),
        ("skip", {"position_ms": 20_000, "duration_ms": 200_000}, (0, 0.72)),
        ("skip", {}, (0, 0.4)),
        ("play", {}, None),
        ("skip", {"position_ms": 190_000, "duration_ms": 200_000}, None),  # a late skip says little
    ],
)
def test_engagement_label_follows_the_feedback_weights(type_, fields, expected) -> None:
    label = engagement_label(Event(event_id="e", user_id="u", track_id="t", type=type_, ts=T0, **fields))
    if expected is None:
        assert label is None
    else:
        assert label[0] == expected[0] and label[1] == pytest.approx(expected[1])
    assert MIN_SIGNAL == 0.15


def test_it_learns_a_listeners_preference() -> None:
    model = UserModel()
    for e, t in listener(1, 400):
        model.learn_event(e, t)
    held_out = listener(2, 300)
    hits = 0
    for e, t in held_out:
        predicted = model.predict_event(e, t) > 0.5
        hits += predicted == (t.energy > 0.7)
    assert hits / len(held_out) > 0.8


def test_progressive_log_loss_beats_a_constant() -> None:
    model = UserModel()
    losses, labels = [], []
    for e, t in listener(3, 500):
        learned = model.learn_event(e, t)
        if learned is not None:
            p = min(max(learned.predicted, 1e-6), 1 - 1e-6)
            losses.append(-math.log(p if learned.label else 1 - p))
            labels.append(learned.label)
    base_rate = sum(labels) / len(labels)
    constant = -(base_rate * math.log(base_rate) + (1 - base_rate) * math.log(1 - base_rate))
    assert sum(losses[100:]) / len(losses[100:]) < 0.85 * constant


def test_the_update_is_rivers_sgd_logistic_regression() -> None:
    config = UserModelConfig()
    ours = UserModel(config=config)
    river = linear_model.LogisticRegression(optimizer=optim.SGD(config.lr), intercept_lr=config.intercept_lr)
    worst = 0.0
    for e, t in listener(4, 1500):
        label = engagement_label(e)
        if label is None:
            continue
        worst = max(worst, abs(ours.predict_event(e, t) - river.predict_proba_one(encode_dict(e, t))[True]))
        ours.learn_event(e, t)
        river.learn_one(encode_dict(e, t), label[0], w=label[1])
    assert worst < 1e-4  # only float32 rounding of our weights separates the two


def test_export_is_312_float32_bytes_and_round_trips_exactly() -> None:
    model = UserModel()
    stream = listener(5, 300)
    for e, t in stream[:200]:
        model.learn_event(e, t)
    data = model.to_bytes()
    assert len(data) == WEIGHTS_BYTES == 4 * (DIM + 1) == 312 <= 400
    restored = UserModel.from_bytes(data)
    assert restored == model
    np.testing.assert_array_equal(np.frombuffer(data, "<f4"), model.to_numpy())
    # A restored model continues bit for bit like the one that never stopped.
    for e, t in stream[200:]:
        model.learn_event(e, t)
        restored.learn_event(e, t)
    assert restored.to_bytes() == model.to_bytes()
    assert pickle.loads(pickle.dumps(model)) == model


def test_from_bytes_refuses_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        UserModel.from_bytes(b"\x00" * 40)


def test_numpy_scoring_of_the_export_matches_predict() -> None:
    model = UserModel()
    for e, t in listener(6, 300):
        model.learn_event(e, t)
    w = np.frombuffer(model.to_bytes(), dtype="<f4")
    for e, t in listener(7, 50):
        z = float(w[:-1] @ encode(e, t) + w[-1])
        assert 1 / (1 + math.exp(-z)) == pytest.approx(model.predict_event(e, t), abs=1e-6)


def test_same_stream_same_weights() -> None:
    a, b = UserModel(), UserModel()
    for e, t in listener(8, 300):
        a.learn_event(e, t)
        b.learn_event(e, t)
    assert a.to_bytes() == b.to_bytes()


def test_warm_start_copies_the_prior_without_sharing_it() -> None:
    prior = OnlineLogisticRegression(dim=DIM)
    for e, t in listener(9, 200):
        label = engagement_label(e)
        if label:
            prior.learn_one(encode_sparse(e, t), *label)
    before = prior.to_bytes()
    user = UserModel.from_prior(prior)
    assert user.to_bytes() == before
    e, t = listener(10, 1)[0]
    assert user.predict_event(e, t) == pytest.approx(prior.predict_proba_one(encode_sparse(e, t)))
    for e, t in listener(11, 50, likes=lambda t: t.energy < 0.5):
        user.learn_event(e, t)
    assert prior.to_bytes() == before
    assert user.to_bytes() != before
    assert UserModel.from_prior(None).to_bytes() == bytes(WEIGHTS_BYTES)


def test_unknown_track_or_weak_signal_teaches_nothing() -> None:
    model = UserModel()
    t = CATALOG[0]
    assert model.learn_event(ev(1, "like", t), None) is None
    assert model.learn_event(ev(2, "play", t), t) is None
    assert model.to_bytes() == bytes(WEIGHTS_BYTES)
    learned = model.learn_event(ev(3, "like", t), t)
    assert learned is not None and learned.label == 1 and learned.predicted == 0.5
    assert learned.surprise == 0.5


@settings(max_examples=50, deadline=None)
@given(st.floats(1.0, 5.0), st.sampled_from(["like", "dislike", "complete"]), st.integers(0, 599))
def test_lr_multiplier_scales_the_first_step(multiplier: float, type_: str, index: int) -> None:
    t = CATALOG[index]
    plain, boosted = UserModel(), UserModel()
    plain.learn_event(ev(1, type_, t), t)
    boosted.learn_event(ev(1, type_, t), t, lr_multiplier=multiplier)
    a, b = plain.to_numpy(), boosted.to_numpy()
    np.testing.assert_allclose(b, multiplier * a, rtol=1e-5, atol=1e-7)


def test_learning_is_fast_and_state_small() -> None:
    model = UserModel()
    stream = listener(12, 3000)
    start = time.perf_counter()
    for e, t in stream:
        model.learn_event(e, t)
    per_event_us = (time.perf_counter() - start) / len(stream) * 1e6
    # Typically ~10 µs (encoding included); the bound leaves room for a slow CI machine.
    assert per_event_us < 200
    assert len(model.to_bytes()) <= 400
