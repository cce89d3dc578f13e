"""The global learned ranker and its progressive validation, with River.

`OnlineRanker` is a River `LogisticRegression` over the ranker's features (`ranking.ranker`), started
from the hand weights (the prior) and trained on every event with a clear outcome. Each example is
**scored before it is learned** (progressive validation): rolling ROC AUC and log loss of the learned
model, and of the hand-weighted prior on the very same events, over the last `window` examples.

The prior's probability for log loss is `sigmoid(s − mean(s))` (s = the hand-weighted score); its
AUC needs no calibration.

>>> ranker = OnlineRanker(("a", "b"), prior=[1.0, 0.0], window=100)
>>> for i in range(400):
...     good = i % 2 == 0
...     _ = ranker.learn_one({"a": 0.0, "b": 1.0 if good else 0.0}, good)  # only b says anything
>>> ranker.metrics()["auc"]["learned"] > 0.9 > ranker.metrics()["auc"]["prior"]
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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
        self.auc = {"learned": metrics.RollingROCAUC(window_size=window),
                    "prior": metrics.RollingROCAUC(window_size=window)}
        self.log_loss = {"learned": utils.Rolling(metrics.LogLoss, window_size=window),
                         "prior": utils.Rolling(metrics.LogLoss, window_size=window)}
        self.prior_mean = stats.Mean()
        self.n = 0
        self.positives = 0

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
        self.prior_mean.update(s)
        self.model.learn_one(x, y, w=w)
        self.n += 1
        self.positives += bool(y)
        return p

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
