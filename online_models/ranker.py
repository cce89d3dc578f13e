"""The global learned ranker and its progressive validation, with River.

`OnlineRanker` is a River `LogisticRegression` over the ranker's features (`ranking.ranker`), started
from the hand weights (the prior) and trained on every event with a clear outcome. Each example is
**scored before it is learned** (progressive validation): rolling ROC AUC and log loss of the learned
model, and of the hand-weighted prior on the very same events, over the last `window` examples.

The prior's probability for log loss is `sigmoid(s − mean(s))` (s = the hand-weighted score); its
AUC needs no calibration.

**Snapshots are small.** The rolling metrics are a function of the last `window` examples, so a
pickle holds those as four arrays (label, learned probability, prior score, prior probability) and
the model, and rebuilds the metrics by replaying them. Pickling River's rolling metrics themselves
cost about 0.9 MB and tens of milliseconds per snapshot, which the flow pays with every partition
waiting (docs/benchmarks.md, "Snapshot stalls").

>>> ranker = OnlineRanker(("a", "b"), prior=[1.0, 0.0], window=100)
>>> for i in range(400):
...     good = i % 2 == 0
...     _ = ranker.learn_one({"a": 0.0, "b": 1.0 if good else 0.0}, good)  # only b says anything
>>> ranker.metrics()["auc"]["learned"] > 0.9 > ranker.metrics()["auc"]["prior"]
True
>>> import pickle
>>> restored = pickle.loads(pickle.dumps(ranker))  # the metrics rebuilt from the last 100 examples
>>> restored.metrics()["auc"] == ranker.metrics()["auc"] and restored.weights() == ranker.weights()
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from river import linear_model, metrics, optim, stats, utils


class OnlineRanker:
    positives: int = 0  # snapshots taken before it was counted resume with 0

    def __init__(self, features: Sequence[str], prior: Sequence[float], window: int = 10_000,
                 learning_rate: float = 0.02) -> None:
        self.features = tuple(features)
        self.prior = dict(zip(self.features, (float(w) for w in prior), strict=True))
        self.model = linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=1e-5)
        for name, weight in self.prior.items():  # a cold ranker is the prior
            self.model._weights[name] = weight
        self.window = window
        self._new_metrics()
        self.prior_mean = stats.Mean()
        self.n = 0
        self.positives = 0
        self._new_ring()

    def _new_metrics(self) -> None:
        window = self.window
        self.auc = {"learned": metrics.RollingROCAUC(window_size=window),
                    "prior": metrics.RollingROCAUC(window_size=window)}
        self.log_loss = {"learned": utils.Rolling(metrics.LogLoss, window_size=window),
                         "prior": utils.Rolling(metrics.LogLoss, window_size=window)}

    def _new_ring(self) -> None:
        # The last `window` examples as the metrics saw them: slot i % window holds example i.
        self._labels = np.zeros(self.window, dtype=bool)
        self._scores = np.zeros((self.window, 3), dtype=np.float64)  # learned p, prior s, prior p
        self._ring_from = self.n
        """The first example the ring holds (later than n − window after a resume from an old pickle)."""

    def prior_score(self, x: Mapping[str, float]) -> float:
        return sum(self.prior[name] * x.get(name, 0.0) for name in self.features)

    def predict_one(self, x: Mapping[str, float]) -> float:
        """P(positive outcome)."""
        return self.model.predict_proba_one(dict(x))[True]

    def learn_one(self, x: Mapping[str, float], y: bool, w: float = 1.0) -> float:
        """Score (progressively), then learn; returns the learned model's prediction before learning."""
        x = dict(x)
        p = self.model.predict_proba_one(x)[True]
        s = self.prior_score(x)
        p_prior = 1.0 / (1.0 + math.exp(-(s - self.prior_mean.get()))) if self.n else 0.5
        self.auc["learned"].update(y, p)
        self.auc["prior"].update(y, s)
        self.log_loss["learned"].update(y, p)
        self.log_loss["prior"].update(y, p_prior)
        slot = self.n % self.window
        self._labels[slot] = y
        self._scores[slot] = (p, s, p_prior)
        self.prior_mean.update(s)
        self.model.learn_one(x, y, w=w)
        self.n += 1
        self.positives += bool(y)
        return p

    def _ring_order(self) -> np.ndarray:
        """Ring slots of the held examples, oldest first."""
        start = max(self._ring_from, self.n - self.window)
        return np.arange(start, self.n) % self.window

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("auc", "log_loss", "_labels", "_scores")}
        order = self._ring_order()
        state["_labels"], state["_scores"] = self._labels[order], self._scores[order]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "auc" in state:  # pickled whole, before small snapshots: keep its metrics, start a ring
            self.__dict__.update(state)
            self.window = self.auc["learned"].window_size
            self._new_ring()
            return
        labels, scores = state.pop("_labels"), state.pop("_scores")
        self.__dict__.update(state)
        self._new_metrics()
        auc, log_loss = self.auc, self.log_loss
        for y, (p, s, p_prior) in zip(labels.tolist(), scores.tolist(), strict=True):
            auc["learned"].update(y, p)
            auc["prior"].update(y, s)
            log_loss["learned"].update(y, p)
            log_loss["prior"].update(y, p_prior)
        self._labels = np.zeros(self.window, dtype=bool)
        self._scores = np.zeros((self.window, 3), dtype=np.float64)
        slots = np.arange(self.n - len(labels), self.n) % self.window
        self._labels[slots], self._scores[slots] = labels, scores
        self._ring_from = self.n - len(labels)

    def weights(self) -> dict[str, float]:
        return {name: float(self.model.weights.get(name, self.prior[name])) for name in self.features}

    @property
    def negatives(self) -> int:
        return self.n - self.positives

    @property
    def intercept(self) -> float:
        return float(self.model.intercept)

    def metrics(self) -> dict[str, dict[str, float]]:
        return {"auc": {k: float(m.get()) for k, m in self.auc.items()},
                "log_loss": {k: float(m.get()) for k, m in self.log_loss.items()}}
