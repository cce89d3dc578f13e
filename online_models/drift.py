"""Taste drift: notice when a listener's taste changes, and learn faster for a while.

**Signal.** Each event the user model learns from gives a *surprise* `|label − p|`, with `p` the
model's probability before learning (`user_model.Engagement.surprise`). While the taste is steady
the model gets it mostly right and surprise stays low; when the listener starts liking what they
used to skip, surprise jumps until the model catches up.

**Test.** A one-sided Page-Hinkley test (in its CUSUM form) for an increase of the mean surprise:

    mean ← mean + max(1/n, α) · (x − mean)            (running mean, then an EWMA with α = 0.02)
    g    ← max(0, g + x − mean − δ)                   (δ = 0.05: shifts smaller than this are noise)
    drift when g > λ (λ = 3.0) and n ≥ 20 events since the last reset; then g, n ← 0

**Reaction.** On a detection the state turns `drifting` for the next `boost_events` (30) learned
events and `lr_multiplier` starts at `boost` (3×), falling linearly back to 1. The flow passes
`lr_multiplier` to `UserModel.learn_event(..., lr_multiplier=...)`, and multiplies the taste
learner's `TasteConfig.min_rate` by it, so both follow the new taste faster.

**Why not River's ADWIN.** ADWIN keeps a variable-length window of buckets: ~1.1–1.4 KB pickled
per detector (it is a Rust object, so it has no compact export), and profiles must stay ≤ 2 KB with
everything else in them. This detector's whole state is 24 bytes (`to_bytes`), float32-rounded at
every step so it round-trips exactly. On the synthetic taste switch of `tests/unit/test_drift.py`
it also detects the switch where ADWIN (δ = 0.002) mostly does not: the surprise rises for only a
few dozen events before the user model adapts, too short for ADWIN's bound. The measured delays are
in `docs/models.md`.

>>> detector = DriftDetector()
>>> for i in range(100):
...     _ = detector.update(0.1 + 0.1 * (i % 3), ts_ms=i)   # steady, low surprise
>>> detector.drifting, detector.lr_multiplier
(False, 1.0)
>>> delay = next(i for i in range(100) if detector.update(0.8, ts_ms=100 + i))
>>> delay, detector.drifting, detector.lr_multiplier, detector.state()["since_ms"]
(5, True, 3.0, 105)
>>> DriftDetector.from_bytes(detector.to_bytes()) == detector
True
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DriftConfig:
    delta: float = 0.05
    """Increases of the mean surprise smaller than this are tolerated."""
    threshold: float = 3.0
    """λ: cumulative excess surprise that signals drift."""
    min_events: int = 20
    """Events since the last reset before a detection is allowed."""
    mean_alpha: float = 0.02
    """The mean surprise is a running mean for the first 1/α events, then an EWMA."""
    boost: float = 3.0
    """Learning-rate multiplier right after a detection."""
    boost_events: int = 30
    """Learned events over which the multiplier falls back to 1 (and `drifting` stays True)."""


DRIFT_CONFIG = DriftConfig()

_STATE = struct.Struct("<IffHHq")
_F32 = struct.Struct("<f")


def _f32(value: float) -> float:
    return _F32.unpack(_F32.pack(value))[0]


@dataclass
class DriftDetector:
    """Per-user Page-Hinkley drift detector on the user model's surprise; 24 bytes of state."""

    n: int = 0
    mean: float = 0.0
    g: float = 0.0
    boost_left: int = 0
    detections: int = 0
    since_ms: int = 0
    config: DriftConfig = field(default=DRIFT_CONFIG, compare=False)

    def update(self, surprise: float, ts_ms: int) -> bool:
        """Feed one surprise in [0, 1] at event time `ts_ms`; True when drift is detected now."""
        config = self.config
        if self.boost_left > 0:
            self.boost_left -= 1
        x = min(1.0, max(0.0, surprise))
        self.n = min(self.n + 1, 2**32 - 1)
        rate = max(1.0 / self.n, config.mean_alpha)
        self.mean = _f32(self.mean + rate * (x - self.mean))
        self.g = _f32(max(0.0, self.g + x - self.mean - config.delta))
        if self.n >= config.min_events and self.g > config.threshold:
            self.detections = min(self.detections + 1, 2**16 - 1)
            self.since_ms = ts_ms
            self.boost_left = config.boost_events
            self.n, self.g = 0, 0.0
            return True
        return False

    @property
    def drifting(self) -> bool:
        return self.boost_left > 0

    @property
    def lr_multiplier(self) -> float:
        """The learning-rate multiplier for the taste learner and the user model: 1 when steady."""
        if self.boost_left <= 0:
            return 1.0
        config = self.config
        return 1.0 + (config.boost - 1.0) * self.boost_left / config.boost_events

    def state(self) -> dict[str, Any]:
        """What the profile shows: `{drifting, since_ms, detections, lr_multiplier}`."""
        return {
            "drifting": self.drifting,
            "since_ms": self.since_ms if self.detections else None,
            "detections": self.detections,
            "lr_multiplier": self.lr_multiplier,
        }

    def to_bytes(self) -> bytes:
        """`u32 n, f32 mean, f32 g, u16 boost_left, u16 detections, i64 since_ms`: 24 bytes."""
        return _STATE.pack(self.n, self.mean, self.g, self.boost_left, self.detections, self.since_ms)

    @classmethod
    def from_bytes(cls, data: bytes, config: DriftConfig = DRIFT_CONFIG) -> DriftDetector:
        n, mean, g, boost_left, detections, since_ms = _STATE.unpack(data)
        return cls(n, mean, g, boost_left, detections, since_ms, config)


STATE_BYTES = _STATE.size
