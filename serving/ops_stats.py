"""The flow's running totals as operators read them: counters, dead letters by reason, the
freshness histogram and the heartbeat, all from the ops keys of `schemas/keys.py`.

Parsing is pure (and shared by the API, the Prometheus collector and `encore lag`); rates come from
the difference of two readings, so every API replica computes the same numbers from Redis.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

from schemas.keys import FRESHNESS_BUCKETS_MS, KeyLayout
from schemas.values import RankerState, decode_ranker

COUNTERS = ("events_applied", "events_duplicate", "profile_writes", "tracks_upserted", "events_held",
            "events_released", "events_forgotten", "users_forgotten")
"""The flow's counters in `ops_counters`."""

BOUNDS_MS: tuple[float, ...] = (*map(float, FRESHNESS_BUCKETS_MS), math.inf)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


@dataclass(frozen=True, slots=True)
class Freshness:
    """Event (broker timestamp) → profile written, in ms: per-bucket counts, not cumulative."""

    counts: tuple[int, ...] = (0,) * len(BOUNDS_MS)
    sum_ms: float = 0.0
    count: int = 0

    @classmethod
    def parse(cls, raw: Mapping[bytes | str, bytes | str]) -> Freshness:
        """>>> raw = {b"le_5": b"2", b"le_inf": b"1", b"sum_ms": b"40000.5", b"count": b"3"}
        >>> Freshness.parse(raw).counts[:2], Freshness.parse(raw).count
        ((2, 0), 3)
        """
        values = {_text(k): _text(v) for k, v in raw.items()}
        counts = []
        for bound in BOUNDS_MS:
            name = "le_inf" if math.isinf(bound) else f"le_{int(bound)}"
            counts.append(int(values.get(name, 0)))
        return cls(tuple(counts), float(values.get("sum_ms", 0)), int(values.get("count", 0)))

    def minus(self, earlier: Freshness) -> Freshness:
        """The samples recorded since `earlier` (a reading of the same histogram)."""
        counts = tuple(max(0, a - b) for a, b in zip(self.counts, earlier.counts, strict=True))
        return Freshness(counts, max(0.0, self.sum_ms - earlier.sum_ms), max(0, self.count - earlier.count))

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound in seconds, samples at or below it): Prometheus histogram buckets."""
        total, buckets = 0, []
        for bound, count in zip(BOUNDS_MS, self.counts, strict=True):
            total += count
            buckets.append((bound / 1000, total))
        return buckets

    def quantile(self, q: float) -> float | None:
        """The q-quantile in ms, interpolated within its bucket as Prometheus's histogram_quantile
        does; samples above the last bound report that bound. None without samples.

        >>> Freshness(counts=(0, 10) + (0,) * 11, count=10).quantile(0.5)
        7.5
        """
        samples = sum(self.counts)
        if samples == 0:
            return None
        rank = q * samples
        seen, lower = 0, 0.0
        for bound, count in zip(BOUNDS_MS, self.counts, strict=True):
            if count and seen + count >= rank:
                if math.isinf(bound):
                    return lower
                return round(lower + (bound - lower) * (rank - seen) / count, 3)
            seen += count
            lower = bound if not math.isinf(bound) else lower
        return lower

    @property
    def mean_ms(self) -> float | None:
        return round(self.sum_ms / self.count, 3) if self.count else None


@dataclass(frozen=True, slots=True)
class FlowStats:
    """One reading of the flow's ops keys."""

    counters: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    freshness: Freshness = field(default_factory=Freshness)
    heartbeat_ms: int | None = None
    read_at_ms: int = 0
    ranker: RankerState | None = None
    """The learned ranker as last published, with its progressive AUC and log loss."""

    @classmethod
    def parse(cls, counters: Mapping[Any, Any], dead_letters: Mapping[Any, Any],
              freshness: Mapping[Any, Any], heartbeat: bytes | str | None, ranker: bytes | None = None,
              *, now_ms: int) -> FlowStats:
        return cls(
            counters={name: int(_text(counters.get(name.encode(), counters.get(name, b"0"))))
                      for name in COUNTERS},
            dead_letters={_text(k): int(v) for k, v in dead_letters.items()},
            freshness=Freshness.parse(freshness),
            heartbeat_ms=int(_text(heartbeat)) if heartbeat is not None else None,
            read_at_ms=now_ms,
            ranker=decode_ranker(ranker),
        )

    @property
    def dead_letters_total(self) -> int:
        return sum(self.dead_letters.values())

    @property
    def heartbeat_age_s(self) -> float | None:
        if self.heartbeat_ms is None:
            return None
        return round(max(0, self.read_at_ms - self.heartbeat_ms) / 1000, 3)


def _queue(pipe: Any, keys: KeyLayout) -> None:
    pipe.hgetall(keys.ops_counters)
    pipe.hgetall(keys.ops_dead_letters)
    pipe.hgetall(keys.ops_freshness)
    pipe.get(keys.ops_heartbeat)
    pipe.get(keys.ranker)


def read_stats(client: redis.Redis, keys: KeyLayout) -> FlowStats:
    """One reading (five commands in one pipeline) with a blocking client."""
    pipe = client.pipeline(transaction=False)
    _queue(pipe, keys)
    return FlowStats.parse(*pipe.execute(), now_ms=int(time.time() * 1000))


async def read_stats_async(client: aioredis.Redis, keys: KeyLayout) -> FlowStats:
    """One reading with an asyncio client."""
    pipe = client.pipeline(transaction=False)
    _queue(pipe, keys)
    return FlowStats.parse(*(await pipe.execute()), now_ms=int(time.time() * 1000))


@dataclass(frozen=True, slots=True)
class Window:
    """What happened between two readings: rates per second, and the freshness of that window."""

    seconds: float
    rates: dict[str, float]
    dead_letters_per_s: float
    freshness: Freshness


class StatsHistory:
    """Recent readings, to turn running totals into rates over about `window_s` seconds."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._readings: collections.deque[FlowStats] = collections.deque()

    def add(self, stats: FlowStats) -> Window | None:
        """Remember a reading; the window from the oldest kept reading to it (None if too short)."""
        readings = self._readings
        readings.append(stats)
        while len(readings) > 2 and (stats.read_at_ms - readings[1].read_at_ms) / 1000 >= self._window_s:
            readings.popleft()
        first = readings[0]
        seconds = (stats.read_at_ms - first.read_at_ms) / 1000
        if seconds < 0.5:
            return None
        rates = {name: round(max(0, stats.counters.get(name, 0) - first.counters.get(name, 0)) / seconds, 3)
                 for name in COUNTERS}
        dead = max(0, stats.dead_letters_total - first.dead_letters_total) / seconds
        return Window(round(seconds, 3), rates, round(dead, 3), stats.freshness.minus(first.freshness))
