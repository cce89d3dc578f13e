"""The global engagement model: learned from everyone's events, the warm start of new listeners.

Same features, label rule and update as `online_models.user_model` (78 float32 weights), a
smaller step. To
not make one worker a bottleneck, there is no single global learner: every worker keeps a
**replica** that learns from the events it already sees (its own partitions), and replicas are
combined now and then through the store (model averaging, as in federated learning). Two rules:

- `merge(replicas, weights)`: the weighted average (FedAvg; by default each replica weighs the
  events it learned since the last merge). Simple and robust, but with K workers each replica made
  only ~1/K of the steps, so the average moves ~K times slower than one learner seeing everything.
- `merge_deltas(base, replicas)`: `base + Σ (replicaₖ − base)` for replicas that all started from
  `base`: to first order the same as one learner taking every step. On the population of
  `tests/unit/test_global_model.py` (3 and 8 workers) it matches a central learner's held-out log
  loss within 0.01; averaging is 0.03–0.07 worse. **This is the one the protocol uses.**

The protocol (the I/O wiring in the flow, see `docs/models.md`):

1. Event time is cut into periods of `GLOBAL_PERIOD_MS` (15 min). Worker *k* learns into its replica,
   counting `n_seen`; the replica remembers the period of the model it started from (`base_period`).
2. When worker *k* first sees an event of period `e + 1`, it writes its replica
   (`GlobalModel.to_record()`, full-state, idempotent) to a hash for period `e`, field = its id.
3. Whoever finds every worker's record for `e` (or a grace period later) merges them
   (`merge_records(records, base)`: only replicas that started from `base` contribute deltas;
   sorted by worker id and exactly summed, so every merger computes the same bytes) and writes the
   result with SET NX under a key for `e`: immutable once written, the first writer wins.
4. Workers adopt the published model (`adopt`: weights replaced, `n_seen` reset, `base_period` set).
5. A new listener first seen at event time `ts` warm-starts from the newest model published for a
   period ≤ `prior_period(ts)` (two periods back, so it exists by then): after a crash, the replay
   picks the same immutable model, so it rebuilds the same user model.

Merging costs O(workers × 78) floats per period; no event ever waits on another worker.

>>> a, b = GlobalModel(), GlobalModel()
>>> a.weights[0], a.n_seen = 1.0, 3
>>> b.weights[0], b.n_seen = 0.0, 1
>>> merged = merge([a, b])          # weighted by events seen: (3·1 + 1·0) / 4
>>> merged.weights[0], merged.n_seen
(0.75, 4)
>>> merge([a, b], weights=[1, 1]).weights[0]
0.5
>>> merge_deltas(GlobalModel(), [a, b]).weights[0]   # 0 + (1 − 0) + (0 − 0)
1.0
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from online_models.context_features import DIM, encode_sparse
from online_models.logistic import OnlineLogisticRegression
from online_models.user_model import Engagement, engagement_label
from schemas.events import Event
from schemas.tracks import Track

GLOBAL_PERIOD_MS = 15 * 60_000
"""Event-time period between merges of the workers' replicas."""
PRIOR_LAG_PERIODS = 2
"""A new listener warm-starts from the model published this many periods before their first event."""

_RECORD_HEADER = struct.Struct("<BqQ")
RECORD_VERSION = 1
NO_BASE = -1
"""`base_period` of a replica that did not start from a published model."""


@dataclass(frozen=True)
class GlobalModelConfig:
    lr: float = 0.1
    intercept_lr: float = 0.01
    l2: float = 0.0


GLOBAL_MODEL_CONFIG = GlobalModelConfig()


class GlobalModel(OnlineLogisticRegression):
    """One worker's replica of the global engagement model, and how many events it learned."""

    __slots__ = ("base_period", "n_seen")

    def __init__(
        self, weights: Iterable[float] | None = None, config: GlobalModelConfig = GLOBAL_MODEL_CONFIG,
        n_seen: int = 0, base_period: int = NO_BASE,
    ) -> None:
        super().__init__(dim=DIM, lr=config.lr, intercept_lr=config.intercept_lr, l2=config.l2,
                         weights=weights)
        self.n_seen = n_seen
        self.base_period = base_period

    def predict_event(self, event: Event, track: Track | None) -> float:
        """P(positive engagement) with `track` in the event's time and context."""
        return self.predict_proba_one(encode_sparse(event, track))

    def learn_event(self, event: Event, track: Track | None) -> Engagement | None:
        """Learn from one event by the same label rule as the user model."""
        if track is None:
            return None
        label = engagement_label(event)
        if label is None:
            return None
        y, w = label
        p = self.learn_one(encode_sparse(event, track), y, w)
        self.n_seen += 1
        return Engagement(y, w, p)

    def adopt(self, merged: OnlineLogisticRegression, period: int) -> None:
        """Continue from the model published for `period`: its weights, and a fresh count."""
        self.set_weights(merged.weights)
        self.n_seen = 0
        self.base_period = period

    def to_record(self) -> bytes:
        """`u8 record version, i64 base_period, u64 n_seen`, then the float32 weights (for the store)."""
        return _RECORD_HEADER.pack(RECORD_VERSION, self.base_period, self.n_seen) + self.to_bytes()

    @classmethod
    def from_record(cls, data: bytes, config: GlobalModelConfig = GLOBAL_MODEL_CONFIG) -> GlobalModel:
        version, base_period, n_seen = _RECORD_HEADER.unpack_from(data)
        if version != RECORD_VERSION:
            raise ValueError(f"global model record version {version} is not supported")
        weights = OnlineLogisticRegression.from_bytes(data[_RECORD_HEADER.size :]).weights
        if len(weights) != DIM + 1:
            raise ValueError(f"expected {DIM + 1} weights, got {len(weights)}")
        return cls(weights=weights, config=config, n_seen=n_seen, base_period=base_period)

    def __eq__(self, other: object) -> bool:
        return (
            super().__eq__(other)
            and isinstance(other, GlobalModel)
            and (self.n_seen, self.base_period) == (other.n_seen, other.base_period)
        )

    __hash__ = None  # type: ignore[assignment]


def merge(
    models: Sequence[OnlineLogisticRegression],
    weights: Sequence[float] | None = None,
    config: GlobalModelConfig = GLOBAL_MODEL_CONFIG,
) -> GlobalModel:
    """The weighted average of replicas (by default each weighs its `n_seen`).

    Each coordinate is an exactly rounded sum (`math.fsum`) divided once, so the result does not
    depend on the order of `models`. If every weight is 0 (nobody learned anything), the plain
    average is returned. The merged `n_seen` is the total of the replicas'.
    """
    if not models:
        raise ValueError("merge needs at least one model")
    dims = {m.dim for m in models}
    if len(dims) != 1:
        raise ValueError(f"cannot merge models of different sizes: {sorted(dims)}")
    if weights is None:
        weights = [float(getattr(m, "n_seen", 1)) for m in models]
    if len(weights) != len(models):
        raise ValueError("one weight per model")
    if any(w < 0 or not math.isfinite(w) for w in weights):
        raise ValueError("weights must be finite and ≥ 0")
    total = math.fsum(weights)
    if total == 0:
        weights, total = [1.0] * len(models), float(len(models))
    merged = [
        math.fsum(w * m.weights[i] for m, w in zip(models, weights, strict=True)) / total
        for i in range(len(models[0].weights))
    ]
    n_seen = sum(int(getattr(m, "n_seen", 0)) for m in models)
    return GlobalModel(weights=merged, config=config, n_seen=n_seen)


def merge_deltas(
    base: OnlineLogisticRegression,
    models: Sequence[OnlineLogisticRegression],
    config: GlobalModelConfig = GLOBAL_MODEL_CONFIG,
) -> GlobalModel:
    """`base + Σ (model − base)`: every replica's steps kept, as if one learner had taken them all.

    Use it for replicas that all started from `base`. Exactly rounded sums (`math.fsum`), so the
    result does not depend on the order of `models`."""
    if any(m.dim != base.dim for m in models):
        raise ValueError("cannot merge models of different sizes")
    if not models:
        return GlobalModel(weights=base.weights, config=config)
    merged = [
        b + math.fsum(m.weights[i] - b for m in models) for i, b in enumerate(base.weights)
    ]
    n_seen = sum(int(getattr(m, "n_seen", 0)) for m in models)
    return GlobalModel(weights=merged, config=config, n_seen=n_seen)


def merge_records(
    records: Mapping[str, bytes],
    base: OnlineLogisticRegression | None = None,
    base_period: int = NO_BASE,
    config: GlobalModelConfig = GLOBAL_MODEL_CONFIG,
) -> GlobalModel:
    """Merge the replicas' records keyed by worker id (as read from the store's hash).

    With `base` (the model published for `base_period`): `merge_deltas` of the replicas that started
    from it; a replica still on an older model is left out (its delta would count old steps twice),
    and with none left the result is `base`. Without `base`: `merge` (the weighted average)."""
    replicas = [GlobalModel.from_record(records[k], config) for k in sorted(records)]
    if base is None:
        return merge(replicas, config=config)
    current = [r for r in replicas if r.base_period == base_period]
    return merge_deltas(base, current, config=config)


def period_of(ts_ms: int, period_ms: int = GLOBAL_PERIOD_MS) -> int:
    """The merge period an event time falls in."""
    return ts_ms // period_ms


def prior_period(ts_ms: int, period_ms: int = GLOBAL_PERIOD_MS, lag: int = PRIOR_LAG_PERIODS) -> int:
    """The newest period whose published model a listener first seen at `ts_ms` starts from."""
    return period_of(ts_ms, period_ms) - lag


class GlobalPriors:
    """The published global models a worker knows, by period; `prior_for(ts)` picks a warm start.

    >>> priors = GlobalPriors()
    >>> old, new = GlobalModel(), GlobalModel()
    >>> new.weights[-1] = 1.0
    >>> priors.publish(10, old); priors.publish(11, new)
    >>> priors.prior_for(12 * GLOBAL_PERIOD_MS).intercept   # two periods back: period 10
    0.0
    >>> priors.prior_for(13 * GLOBAL_PERIOD_MS).intercept
    1.0
    """

    def __init__(
        self, keep: int = 8, period_ms: int = GLOBAL_PERIOD_MS, lag: int = PRIOR_LAG_PERIODS
    ) -> None:
        self.keep = keep
        self.period_ms = period_ms
        self.lag = lag
        self.models: dict[int, OnlineLogisticRegression] = {}

    def publish(self, period: int, model: OnlineLogisticRegression) -> None:
        """Record the model published for `period` (immutable: a second publish is ignored)."""
        self.models.setdefault(period, model)
        for old in sorted(self.models)[: -self.keep]:
            del self.models[old]

    def prior_for(self, ts_ms: int) -> OnlineLogisticRegression | None:
        """The newest published model of a period ≤ `prior_period(ts_ms)`, or None."""
        target = prior_period(ts_ms, self.period_ms, self.lag)
        eligible = [p for p in self.models if p <= target]
        return self.models[max(eligible)] if eligible else None
