"""Exponentially decayed sums in event time that add up in any order (commutative, mergeable).

A decayed count with half-life `h` seen at time `T` is `Σ c_j · 2^(−(T − t_j)/h)`. Decaying a
stored total in place ("multiply by the decay since the last update, then add") depends on the
order updates arrive in. Instead every contribution is stored *scaled to a fixed reference
time* `t_ref`:

    stored += c · 2^((t − t_ref)/h)          value(T) = stored · 2^((t_ref − T)/h)

so the stored total is a plain sum: contributions add in any order, from any number of workers,
and summing the workers' totals gives the same number (up to float rounding, ~1e-16 relative),
which is exactly what Redis `HINCRBYFLOAT` / `ZINCRBY` need. The fixed `t_ref` cannot be one
epoch forever (`2^((t − t_ref)/h)` overflows a float after ~1000 half-lives), so time is cut into
**eras** of `era_half_lives` half-lives (64 by default) and each era has its own `t_ref` = its
start. A contribution lands in the era of its event time and is scaled by at most `2^64`.
Reading sums the eras. An era more than one era older than the newest holds contributions that
have decayed by more than `2^-64` and is dropped (`prune`): the rule depends only on the newest
era seen, which grows monotonically, so pruning early or late gives the same result.

>>> d = Decay(half_life_ms=1_000)
>>> sums = DecayedSums(d)
>>> sums.add(1.0, ts_ms=0)
>>> sums.add(1.0, ts_ms=1_000)
>>> sums.value_at(1_000)   # the first halved, the second whole
1.5
>>> other = DecayedSums(d)
>>> other.add(1.0, ts_ms=1_000)
>>> other.add(1.0, ts_ms=0)
>>> other == sums          # the same contributions in another order: the same state
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

ERA_HALF_LIVES = 64
"""Half-lives per era: a contribution is scaled by at most 2^64; an era two back is ≤ 2^-64."""


@dataclass(frozen=True)
class Decay:
    """A half-life in event time, and the era cut that keeps scaled values finite."""

    half_life_ms: int
    era_half_lives: int = ERA_HALF_LIVES

    def __post_init__(self) -> None:
        if self.half_life_ms <= 0 or self.era_half_lives <= 0:
            raise ValueError("half_life_ms and era_half_lives must be positive")

    @property
    def era_ms(self) -> int:
        return self.half_life_ms * self.era_half_lives

    def era(self, ts_ms: int) -> int:
        """The era of an event time (floor division: also right for times before 1970)."""
        return ts_ms // self.era_ms

    def scaled(self, value: float, ts_ms: int) -> tuple[int, float]:
        """`(era, value · 2^((ts − era start)/h))`: what to add to that era's stored sum."""
        era = self.era(ts_ms)
        offset = ts_ms - era * self.era_ms  # integer, in [0, era_ms)
        return era, value * 2.0 ** (offset / self.half_life_ms)

    def factor(self, era: int, at_ms: int) -> float:
        """Turns an era's stored sum into its value at `at_ms`."""
        exponent = (era * self.era_ms - at_ms) / self.half_life_ms
        return 0.0 if exponent < -1000 else 2.0**exponent

    def value_at(self, sums: Mapping[int, float], at_ms: int) -> float:
        """The decayed value at `at_ms` of per-era stored sums (eras summed oldest first)."""
        if len(sums) == 1:
            # `fsum` of one number is that number, except that it turns −0.0 into 0.0: so does + 0.0.
            ((era, value),) = sums.items()
            return value * self.factor(era, at_ms) + 0.0
        return math.fsum([sums[era] * self.factor(era, at_ms) for era in sorted(sums)])


def prune_eras(sums: dict[int, float], newest_era: int) -> None:
    """Drop eras older than `newest_era − 1` in place (their contributions are below 2^-64)."""
    for era in [e for e in sums if e < newest_era - 1]:
        del sums[era]


@dataclass
class DecayedSums:
    """One decayed sum, stored per era, mergeable: the building block of the item statistics.

    `a.merge(b)` equals adding `b`'s contributions to `a` one by one, in any order."""

    decay: Decay
    eras: dict[int, float] = field(default_factory=dict)

    def add(self, value: float, ts_ms: int) -> None:
        era, scaled = self.decay.scaled(value, ts_ms)
        self.eras[era] = self.eras.get(era, 0.0) + scaled
        prune_eras(self.eras, max(self.eras))

    def merge(self, other: DecayedSums) -> None:
        if other.decay != self.decay:
            raise ValueError("cannot merge sums with different half-lives")
        for era, value in other.eras.items():
            self.eras[era] = self.eras.get(era, 0.0) + value
        if self.eras:
            prune_eras(self.eras, max(self.eras))

    def value_at(self, at_ms: int) -> float:
        return self.decay.value_at(self.eras, at_ms)

    def rank_key(self, newest_era: int) -> float:
        """The value at the start of `newest_era`: comparable across sums given the same era."""
        return self.decay.value_at(self.eras, newest_era * self.decay.era_ms)
