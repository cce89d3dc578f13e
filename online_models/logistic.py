"""A minimal online logistic regression whose whole state is one float32 array.

The update is River's `linear_model.LogisticRegression` with `optim.SGD(lr)` and the log loss
(the test suite checks the two agree): for features `x` (sparse `(index, value)` pairs), label
`y` in {0, 1} and sample weight `w`,

    p = σ(b + Σ wᵢ xᵢ)        g = clip(w · (p − y))
    b  ← b  − intercept_lr · m · g
    wᵢ ← wᵢ − lr · m · (g · xᵢ + l2 · wᵢ)     for the non-zero xᵢ only

where `m` is a learning-rate multiplier (the drift detector raises it while a taste is moving).
Why not River's object itself: one per user costs ~2.3 KB in memory (1.7 KB pickled) and its
weights are float64 in a dict; this one keeps `DIM + 1` float32 values in an `array('f')`
(`4 · (DIM + 1)` bytes, 312 for the Encore layout). Every stored weight is rounded to float32 after
each step, so `to_bytes()` / `from_bytes()` round-trip *exactly*: a model restored from a Redis
profile continues bit for bit like the one that never stopped. The arithmetic is plain Python
floats in a fixed order, so the same inputs give the same weights in every process.

>>> model = OnlineLogisticRegression(dim=2, lr=0.5, intercept_lr=0.5)
>>> for _ in range(20):
...     _ = model.learn_one([(0, 1.0)], 1)
...     _ = model.learn_one([(1, 1.0)], 0)
>>> model.predict_proba_one([(0, 1.0)]) > 0.8 > 0.2 > model.predict_proba_one([(1, 1.0)])
True
>>> OnlineLogisticRegression.from_bytes(model.to_bytes(), lr=0.5).to_bytes() == model.to_bytes()
True
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence

import numpy as np

Sparse = Sequence[tuple[int, float]]
"""Features as `(index, value)` pairs (see `online_models.context_features.encode_sparse`)."""


def sigmoid(z: float) -> float:
    """σ(z), clamped like River's (0 below −30, 1 above 30)."""
    if z < -30.0:
        return 0.0
    if z > 30.0:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


class OnlineLogisticRegression:
    """Binary logistic regression learned one example at a time; weights then intercept, float32."""

    __slots__ = ("clip_gradient", "intercept_lr", "l2", "lr", "weights")

    def __init__(
        self,
        dim: int,
        lr: float = 0.05,
        intercept_lr: float = 0.01,
        l2: float = 0.0,
        clip_gradient: float = 1e12,
        weights: Iterable[float] | None = None,
    ) -> None:
        self.lr = lr
        self.intercept_lr = intercept_lr
        self.l2 = l2
        self.clip_gradient = clip_gradient
        self.weights = array("f", weights if weights is not None else bytes(4 * (dim + 1)))
        if len(self.weights) != dim + 1:
            raise ValueError(f"expected {dim + 1} weights (dim + intercept), got {len(self.weights)}")

    @property
    def dim(self) -> int:
        return len(self.weights) - 1

    @property
    def intercept(self) -> float:
        return self.weights[-1]

    def raw_one(self, x: Sparse) -> float:
        """The logit `b + Σ wᵢ xᵢ`."""
        w = self.weights
        z = w[-1]
        for i, v in x:
            z += w[i] * v
        return z

    def predict_proba_one(self, x: Sparse) -> float:
        """P(y = 1 | x)."""
        return sigmoid(self.raw_one(x))

    def learn_one(self, x: Sparse, y: bool | int, w: float = 1.0, lr_multiplier: float = 1.0) -> float:
        """One SGD step on `(x, y)` with sample weight `w`; returns the probability *before* it."""
        weights = self.weights
        p = sigmoid(self.raw_one(x))
        g = w * (p - (1.0 if y else 0.0))
        clip = self.clip_gradient
        g = min(clip, max(-clip, g))
        weights[-1] = weights[-1] - self.intercept_lr * lr_multiplier * g
        step = self.lr * lr_multiplier
        l2 = self.l2
        for i, v in x:
            weights[i] = weights[i] - step * (g * v + l2 * weights[i])
        return p

    # Export and import: raw little-endian float32, weights then intercept.

    def to_bytes(self) -> bytes:
        data = self.weights
        if data.itemsize != 4:  # pragma: no cover - every platform Python runs on today
            raise RuntimeError("array('f') is not 4 bytes here")
        return data.tobytes() if _LITTLE_ENDIAN else _swapped(data).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, **params: float) -> OnlineLogisticRegression:
        if len(data) % 4 or len(data) < 8:
            raise ValueError(f"weights must be float32 bytes, got {len(data)} bytes")
        weights = array("f")
        weights.frombytes(data)
        if not _LITTLE_ENDIAN:  # pragma: no cover
            weights.byteswap()
        return cls(dim=len(weights) - 1, weights=weights, **params)

    def to_numpy(self) -> np.ndarray:
        """The weights as a float32 numpy array (`dim` weights then the intercept): the serving form."""
        return np.frombuffer(self.to_bytes(), dtype="<f4").copy()

    def set_weights(self, weights: Iterable[float]) -> None:
        """Replace all weights (a warm start, or adopting a merged global model)."""
        new = array("f", weights)
        if len(new) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} weights, got {len(new)}")
        self.weights = new

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, OnlineLogisticRegression)
            and self.weights.tobytes() == other.weights.tobytes()
            and (self.lr, self.intercept_lr, self.l2) == (other.lr, other.intercept_lr, other.l2)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, lr={self.lr}, intercept={self.intercept:.4f})"


_LITTLE_ENDIAN = np.little_endian


def _swapped(data: array) -> array:  # pragma: no cover - big-endian hosts only
    copy = array("f", data)
    copy.byteswap()
    return copy
