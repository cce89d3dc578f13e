"""The global model and replica averaging: online_models/global_model.py."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from online_models.context_features import DIM
from online_models.global_model import (
    GLOBAL_PERIOD_MS,
    GlobalModel,
    GlobalPriors,
    merge,
    merge_deltas,
    merge_records,
    period_of,
    prior_period,
)
from online_models.logistic import OnlineLogisticRegression
from online_models.user_model import UserModel
from schemas.events import Event

T0 = 1_795_248_000_000
CATALOG = read_spotify_csv(DEFAULT_SAMPLE)


def population(seed: int, n: int) -> list[tuple[Event, object]]:
    """Many listeners; most prefer energetic tracks, every one a little differently."""
    rng = random.Random(seed)
    cut = {f"u{k}": rng.uniform(0.55, 0.8) for k in range(50)}
    out = []
    for i in range(n):
        user = rng.choice(list(cut))
        t = rng.choice(CATALOG)
        positive = (t.energy > cut[user]) != (rng.random() < 0.1)
        type_ = rng.choice(["like", "complete"]) if positive else "dislike"
        out.append((Event(event_id=f"e{i}", user_id=user, track_id=t.track_id, type=type_,
                          ts=T0 + i * 10_000), t))
    return out


def log_loss(model: GlobalModel, stream) -> float:
    total = 0.0
    for e, t in stream:
        p = min(max(model.predict_event(e, t), 1e-6), 1 - 1e-6)
        total -= math.log(p if e.type != "dislike" else 1 - p)
    return total / len(stream)


def replica(value: float, n_seen: int) -> GlobalModel:
    model = GlobalModel(n_seen=n_seen)
    model.set_weights([value] * (DIM + 1))
    return model


def test_merge_is_the_average_weighted_by_events_seen() -> None:
    merged = merge([replica(1.0, 3), replica(0.0, 1), replica(5.0, 0)])
    assert merged.weights[0] == pytest.approx(0.75)
    assert merged.n_seen == 4
    assert merge([replica(1.0, 3), replica(0.0, 1)], weights=[1, 3]).weights[5] == pytest.approx(0.25)


def test_merge_with_nothing_learned_is_the_plain_average() -> None:
    assert merge([replica(1.0, 0), replica(3.0, 0)]).weights[0] == pytest.approx(2.0)


def test_merge_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        merge([])
    with pytest.raises(ValueError):
        merge([replica(1.0, 1), OnlineLogisticRegression(dim=3)])
    with pytest.raises(ValueError):
        merge([replica(1.0, 1)], weights=[-1.0])
    with pytest.raises(ValueError):
        merge([replica(1.0, 1)], weights=[1.0, 2.0])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.integers(0, 1000)), min_size=1, max_size=6), st.randoms())
def test_merge_does_not_depend_on_the_order_of_replicas(specs, rnd) -> None:
    models = [replica(v, n) for v, n in specs]
    shuffled = models[:]
    rnd.shuffle(shuffled)
    assert merge(models).to_bytes() == merge(shuffled).to_bytes()


def test_records_round_trip_and_merge_by_worker_id() -> None:
    a, b = GlobalModel(), GlobalModel()
    stream = population(1, 400)
    for e, t in stream[:200]:
        a.learn_event(e, t)
    for e, t in stream[200:]:
        b.learn_event(e, t)
    assert GlobalModel.from_record(a.to_record()) == a
    assert a.n_seen == 200
    records = {"worker-1": b.to_record(), "worker-0": a.to_record()}
    assert merge_records(records).to_bytes() == merge([a, b]).to_bytes()
    with pytest.raises(ValueError):
        GlobalModel.from_record(b"\x09" + a.to_record()[1:])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=6), st.floats(-5, 5), st.randoms())
def test_merge_deltas_keeps_every_replicas_steps_in_any_order(values, base_value, rnd) -> None:
    base = replica(base_value, 0)
    models = [replica(v, 1) for v in values]
    merged = merge_deltas(base, models)
    expected = base_value + math.fsum(v - base_value for v in values)
    assert merged.weights[3] == pytest.approx(expected, rel=1e-5, abs=1e-5)
    rnd.shuffle(models)
    assert merge_deltas(base, models).to_bytes() == merged.to_bytes()
    assert merge_deltas(base, []).to_bytes() == base.to_bytes()


def test_merge_records_on_a_base_leaves_out_replicas_on_an_older_model() -> None:
    base = replica(1.0, 0)
    current, stale = replica(3.0, 5), replica(10.0, 5)
    current.base_period, stale.base_period = 7, 6
    records = {"w0": current.to_record(), "w1": stale.to_record()}
    merged = merge_records(records, base=base, base_period=7)
    assert merged.weights[0] == pytest.approx(3.0)
    assert merge_records({"w1": stale.to_record()}, base=base, base_period=7).weights[0] == 1.0


def _federated(stream, workers: int, combine: str) -> GlobalModel:
    replicas = [GlobalModel() for _ in range(workers)]
    base, current_period = GlobalModel(), period_of(stream[0][0].ts, 10 * 60_000)

    def combined() -> GlobalModel:
        return merge(replicas) if combine == "average" else merge_deltas(base, replicas)

    for e, t in stream:
        period = period_of(e.ts, 10 * 60_000)
        if period != current_period:
            base = combined()
            for r in replicas:
                r.adopt(base, current_period)
            current_period = period
        replicas[int(e.user_id[1:]) % workers].learn_event(e, t)  # users split, as by partition
    return combined()


def test_replicas_merged_every_period_learn_about_as_well_as_one_central_model() -> None:
    stream = population(2, 6000)
    train, held_out = stream[:5000], stream[5000:]
    central = GlobalModel()
    for e, t in train:
        central.learn_event(e, t)
    untrained = log_loss(GlobalModel(), held_out)
    central_loss = log_loss(central, held_out)
    assert central_loss < 0.8 * untrained
    for workers in (3, 8):
        deltas = log_loss(_federated(train, workers, "deltas"), held_out)
        average = log_loss(_federated(train, workers, "average"), held_out)
        assert deltas < central_loss + 0.015
        assert average < 0.85 * untrained
        assert deltas < average  # averaging divides the step by the number of workers


def test_adopt_takes_the_merged_weights_and_restarts_the_count() -> None:
    worker = replica(1.0, 10)
    worker.adopt(replica(2.0, 30), period=12)
    assert worker.weights[0] == 2.0 and worker.n_seen == 0 and worker.base_period == 12


def test_priors_pick_a_model_published_two_periods_back_and_ignore_republishing() -> None:
    priors = GlobalPriors(keep=3)
    assert priors.prior_for(T0) is None
    for period in range(100, 106):
        priors.publish(period, replica(float(period), 1))
    priors.publish(105, replica(-1.0, 1))  # immutable: the first publish of a period wins
    assert sorted(priors.models) == [103, 104, 105]
    ts = 106 * GLOBAL_PERIOD_MS + 5
    assert prior_period(ts) == 104
    assert priors.prior_for(ts).weights[0] == 104.0
    assert priors.prior_for(200 * GLOBAL_PERIOD_MS).weights[0] == 105.0
    assert priors.prior_for(104 * GLOBAL_PERIOD_MS) is None  # everything that old was pruned


def test_a_new_listener_starts_from_the_global_model() -> None:
    model = GlobalModel()
    for e, t in population(3, 2000):
        model.learn_event(e, t)
    user = UserModel.from_prior(model)
    e, t = population(4, 1)[0]
    assert user.predict_event(e, t) == pytest.approx(model.predict_event(e, t))
