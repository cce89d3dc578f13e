"""The per-user engagement model: P(this listener engages positively | track, time, context).

A logistic regression over `online_models.context_features` (77 features + intercept = 78 float32
weights, **312 bytes**), learned one event at a time by `OnlineLogisticRegression` (River's SGD
logistic update, float32 state). What it learns from an event (`engagement_label`):

| event | feedback weight (`feedback.py`) | label | sample weight |
|---|---|---|---|
| like | +1.0 | 1 | 1.0 |
| complete | +0.6 | 1 | 0.6 |
| dislike | −1.0 | 0 | 1.0 |
| skip | −0.8 × (1 − fraction played) | 0 | the same magnitude |
| play, late skip | \\|w\\| < `min_signal` (0.15) | — | not learned: says little |

An event on a track the catalog does not know teaches nothing (as in the taste learner).

- **Warm start**: a new listener's model starts as a copy of the global model's weights
  (`UserModel.from_prior`, see `online_models.global_model`), so the first recommendations already
  know what most people skip; every event then moves it toward this listener.
- **Drift**: `learn_event(..., lr_multiplier=m)` takes the multiplier that
  `online_models.drift.DriftDetector` recommends, so a listener whose taste moves is followed faster.
  `learn_event` returns the probability the model gave *before* learning: the drift detector's input.
- **Profile form**: `to_bytes()` is the 312 raw little-endian float32 bytes (weights in
  `FEATURE_NAMES` order, intercept last); `from_bytes()` restores it exactly. Serving scores a whole
  candidate matrix with `context_features.score_tracks(np.frombuffer(b, "<f4"), ...)`.

Measured (2-core dev machine, `docs/models_measure.py`): ~9–12 µs per `learn_event` on a typical
event, most of it feature encoding; the SGD step itself ~3 µs, as fast as River's
`LogisticRegression.learn_one` on the same dict (~3.6 µs). The difference is size: ~0.5 KB in
memory per user (312 B exported) against ~2.3 KB in memory (1.7 KB pickled) for River's object.

>>> from schemas.events import Event
>>> from schemas.tracks import Track
>>> loud = Track(track_id="a", genres=["edm"], danceability=0.8, energy=0.95, valence=0.6,
...              acousticness=0.02, instrumentalness=0.3, liveness=0.1, speechiness=0.05,
...              tempo=128.0, loudness=-4.0)
>>> quiet = Track(track_id="b", genres=["folk"], danceability=0.3, energy=0.15, valence=0.4,
...               acousticness=0.9, instrumentalness=0.1, liveness=0.1, speechiness=0.04,
...               tempo=80.0, loudness=-18.0)
>>> def event(i, type_, track):
...     return Event(event_id=f"e{i}", user_id="u", track_id=track.track_id, type=type_,
...                  ts=1_795_248_000_000 + i * 60_000)
>>> model = UserModel()
>>> for i in range(30):
...     _ = model.learn_event(event(2 * i, "like", loud), loud)
...     _ = model.learn_event(event(2 * i + 1, "dislike", quiet), quiet)
>>> model.predict_event(event(99, "play", loud), loud) > 0.8
True
>>> model.predict_event(event(99, "play", quiet), quiet) < 0.2
True
>>> len(model.to_bytes()), UserModel.from_bytes(model.to_bytes()) == model
(312, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from online_models.context_features import DIM, encode_sparse
from online_models.feedback import feedback_weight
from online_models.logistic import OnlineLogisticRegression
from schemas.event_types import SEMANTICS
from schemas.events import Event
from schemas.tracks import Track
from schemas.values import MODEL_WEIGHTS_BYTES

MIN_SIGNAL = 0.15
"""Feedback weights smaller than this in magnitude (a play start, a skip near the end) are not learned."""

WEIGHTS_BYTES = 4 * (DIM + 1)
if WEIGHTS_BYTES != MODEL_WEIGHTS_BYTES:  # the wire format of `schemas.values` must hold the layout
    raise RuntimeError(f"engagement model is {WEIGHTS_BYTES} B, the wire format {MODEL_WEIGHTS_BYTES} B")
"""Size of a user model in the profile: 312 bytes."""


@dataclass(frozen=True)
class UserModelConfig:
    lr: float = 0.5
    """SGD step on the feature weights (times the sample weight and the drift multiplier)."""
    intercept_lr: float = 0.02
    l2: float = 0.0
    min_signal: float = MIN_SIGNAL


USER_MODEL_CONFIG = UserModelConfig()


class Engagement(NamedTuple):
    """What one learned event was: its label, sample weight, and the model's probability before it.

    A named tuple: one is made per learned event, and a tuple is made in C."""

    label: int
    weight: float
    predicted: float

    @property
    def surprise(self) -> float:
        """|label − predicted| in [0, 1]: how wrong the model was (the drift detector's input)."""
        return abs(self.label - self.predicted)


def engagement_label(event: Event, min_signal: float = MIN_SIGNAL) -> tuple[int, float] | None:
    """`(label, sample weight)` of an event, or None when its signal is too weak to learn from.

    label 1 for a positive event type (`schemas.event_types`), 0 for the other clear signals; a
    late skip whose |feedback weight| is below `min_signal` says too little to learn from."""
    semantics = SEMANTICS[event.type]
    weight = feedback_weight(event)
    if not semantics.clear_signal or abs(weight) < min_signal:
        return None
    return (1 if semantics.positive else 0), abs(weight)


class UserModel(OnlineLogisticRegression):
    """One listener's engagement model over `context_features` (78 float32 weights)."""

    __slots__ = ("min_signal",)

    def __init__(
        self, weights: Iterable[float] | None = None, config: UserModelConfig = USER_MODEL_CONFIG
    ) -> None:
        super().__init__(
            dim=DIM, lr=config.lr, intercept_lr=config.intercept_lr, l2=config.l2, weights=weights
        )
        self.min_signal = config.min_signal

    @classmethod
    def from_prior(
        cls, prior: OnlineLogisticRegression | None, config: UserModelConfig = USER_MODEL_CONFIG
    ) -> UserModel:
        """A new listener's model: a copy of the global model's weights (zeros without one)."""
        return cls(weights=prior.weights if prior is not None else None, config=config)

    @classmethod
    def from_bytes(cls, data: bytes, config: UserModelConfig = USER_MODEL_CONFIG) -> UserModel:  # type: ignore[override]
        if len(data) != WEIGHTS_BYTES:
            raise ValueError(f"a user model is {WEIGHTS_BYTES} bytes, got {len(data)}")
        return cls(weights=OnlineLogisticRegression.from_bytes(data).weights, config=config)

    def predict_event(self, event: Event, track: Track | None) -> float:
        """P(positive engagement) with `track` in the event's time and context."""
        return self.predict_proba_one(encode_sparse(event, track))

    def learn_event(
        self, event: Event, track: Track | None, lr_multiplier: float = 1.0
    ) -> Engagement | None:
        """Learn from one event; None (no change) when it carries too little signal or no track."""
        if track is None:
            return None
        label = engagement_label(event, self.min_signal)
        if label is None:
            return None
        y, w = label
        p = self.learn_one(encode_sparse(event, track), y, w, lr_multiplier)
        return Engagement(y, w, p)
