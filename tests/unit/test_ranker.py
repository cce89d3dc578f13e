"""The learned ranker's snapshots: small, and a resumed ranker continues as an uninterrupted one."""

from __future__ import annotations

import copy
import pickle
import random

import pytest

from online_models.ranker import OnlineRanker

FEATURES = ("taste", "genre", "popularity")


def examples(n: int, seed: int = 3) -> list[tuple[dict[str, float], bool, float]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x = {f: rng.random() for f in FEATURES}
        out.append((x, rng.random() < 0.3 + 0.5 * x["taste"], rng.choice([1.0, 0.5, 2.0])))
    return out


def fresh(window: int = 500) -> OnlineRanker:
    return OnlineRanker(FEATURES, prior=[1.0, 0.5, 0.1], window=window)


@pytest.mark.parametrize("cut", [0, 7, 499, 500, 1234])
def test_a_resumed_ranker_continues_as_an_uninterrupted_one(cut: int) -> None:
    stream = examples(2000)
    whole, resumed = fresh(), fresh()
    for x, y, w in stream[:cut]:
        whole.learn_one(x, y, w)
        resumed.learn_one(x, y, w)
    resumed = pickle.loads(pickle.dumps(resumed))
    for x, y, w in stream[cut:]:
        assert resumed.learn_one(x, y, w) == whole.learn_one(x, y, w)
    assert resumed.weights() == whole.weights() and resumed.n == whole.n == 2000
    assert resumed.metrics()["auc"] == whole.metrics()["auc"]
    # Log loss is a rolling sum: rebuilt from the window it may differ in the last bits only.
    for name, value in whole.metrics()["log_loss"].items():
        assert resumed.metrics()["log_loss"][name] == pytest.approx(value, abs=1e-12)


def test_a_snapshot_holds_the_window_as_arrays_not_rivers_metrics() -> None:
    ranker = fresh(window=10_000)
    for x, y, w in examples(12_000):
        ranker.learn_one(x, y, w)
    small = len(pickle.dumps(ranker, protocol=pickle.HIGHEST_PROTOCOL))
    rivers = len(pickle.dumps((ranker.auc, ranker.log_loss), protocol=pickle.HIGHEST_PROTOCOL))
    assert small < rivers / 2
    assert small < 10_000 * (1 + 3 * 8) + 20_000  # the window's labels and scores, and the model


def test_a_ranker_pickled_whole_before_small_snapshots_resumes_with_its_metrics() -> None:
    stream = examples(900)
    old = fresh()
    for x, y, w in stream[:600]:
        old.learn_one(x, y, w)
    legacy = {k: v for k, v in old.__dict__.items()
              if k not in ("_labels", "_scores", "_ring_from", "window")}  # what pickle held then
    resumed = OnlineRanker.__new__(OnlineRanker)
    resumed.__setstate__(copy.deepcopy(legacy))
    assert resumed.metrics() == old.metrics() and resumed.window == 500
    for x, y, w in stream[600:]:
        assert resumed.learn_one(x, y, w) == old.learn_one(x, y, w)
    assert resumed.metrics() == old.metrics()
    # Its next snapshot holds what it saw since (300 examples): the metrics cover those until the
    # window fills again.
    again = pickle.loads(pickle.dumps(resumed))
    assert again.n == 900 and again.weights() == old.weights()
    assert len(again.auc["learned"]._buf_labels) == 300
