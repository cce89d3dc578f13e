"""Per-track statistics: time-decayed counts, smoothed like and skip rates, and trending.

Each track keeps decayed sums in event time (`online_models.decay`):

| counter | half-life | adds per event |
|---|---|---|
| `plays`, `completes`, `likes`, `skips`, `dislikes` | 7 days | 1 for an event of that type |
| `heat_short` | 6 hours | the event's positive feedback weight (like 1, complete 0.6, play 0.1) |
| `heat_long` | 7 days | the same |

Derived, at any read time `T`:
- **listens** = max(plays, skips + completes): players that send a `play` at the start and a `skip`
  or `complete` at the end count once, players that send only the outcome count too.
- **like rate** = (likes + a·p) / (max(listens, likes + dislikes) + a), with the prior p = 0.10 and
  strength a = 5 listens (Beta-Bernoulli posterior mean: a track with no data gets p, and its own
  rate takes over after a few dozen listens).
- **skip rate** = (skips + a·q) / (skips + completes + a), prior q = 0.30, strength a = 5.
- **velocity** of a half-life h: `heat(T) · ln 2 / h`, in heat per hour. A steady stream of r per
  hour has velocity r at every half-life; a burst shows in the short one first.
- **trending** = velocity(6 h) − velocity(7 days): how far the last hours run above the track's
  weekly baseline (0 for a steady hit, > 0 for a rising track, < 0 for a fading one).

**Why it is commutative.** Every counter stores, per era, the plain sum of contributions scaled to
the era's fixed reference time (`c · 2^((t − t_ref)/h)`); the decay to the read time is applied
only when reading. An event's contribution does not depend on anything already stored, so adding
events in any order, or splitting them across workers and summing the workers' states (`merge`),
gives the same sums up to float rounding (~1e-16 relative; `tests/unit/test_item_stats.py`
checks it with hypothesis). Old eras are dropped by a rule that depends only on the newest era seen
(monotonic), so pruning commutes too. Note: commutative is not idempotent — a replayed event counts
twice if it is added twice, so the flow must keep these sums as recovered keyed state (or guard
increments), see `docs/models.md`.

>>> from schemas.events import Event
>>> H = 3_600_000
>>> stats = ItemStats()
>>> for i, type_ in enumerate(["complete", "like", "skip", "complete"]):
...     stats.learn_one(Event(event_id=f"e{i}", user_id=f"u{i}", track_id="t", type=type_, ts=i * H))
>>> round(stats.value("completes", 3 * H), 3), round(stats.skip_rate(3 * H), 3)
(1.988, 0.313)
>>> stats.trending(3 * H) > 0          # all of its heat is recent
True
>>> ItemStats.from_fields(stats.to_fields()) == stats
True
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from online_models.decay import Decay, prune_eras
from online_models.feedback import feedback_weight
from schemas.event_types import ITEM_COUNTERS, SEMANTICS
from schemas.events import Event

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS

STATS_DECAY = Decay(half_life_ms=7 * _DAY_MS)
TREND_SHORT_DECAY = Decay(half_life_ms=6 * _HOUR_MS)
TREND_LONG_DECAY = Decay(half_life_ms=7 * _DAY_MS)

COUNTERS: dict[str, Decay] = {
    **dict.fromkeys(ITEM_COUNTERS, STATS_DECAY),
    "heat_short": TREND_SHORT_DECAY,
    "heat_long": TREND_LONG_DECAY,
}
"""Every counter a track keeps, and its half-life."""



@dataclass(frozen=True)
class RatePriors:
    like_rate: float = 0.10
    skip_rate: float = 0.30
    strength: float = 5.0
    """Pseudo-listens of the prior: how many real listens it takes to move a rate halfway."""


RATE_PRIORS = RatePriors()


def contributions(event: Event) -> list[tuple[str, int, float]]:
    """What one event adds: `(counter, era, scaled value)` triples, independent of any state.

    The flow can sum these per batch (`coalesce`) before applying them: addition commutes."""
    out = []
    counter = SEMANTICS[event.type].counter
    era, value = COUNTERS[counter].scaled(1.0, event.ts)
    out.append((counter, era, value))
    heat = max(0.0, feedback_weight(event))
    if heat > 0:
        for name in ("heat_short", "heat_long"):
            era, value = COUNTERS[name].scaled(heat, event.ts)
            out.append((name, era, value))
    return out


def coalesce(items: Iterable[tuple[str, int, float]]) -> dict[tuple[str, int], float]:
    """Per `(counter, era)` totals of contributions: one write per field per batch."""
    totals: dict[tuple[str, int], float] = {}
    for name, era, value in items:
        totals[name, era] = totals.get((name, era), 0.0) + value
    return totals


@dataclass
class ItemStats:
    """The decayed counters of one track; `learn_one(event)` adds an event, `merge` adds another state."""

    sums: dict[str, dict[int, float]] = field(default_factory=dict)
    """counter → era → the era's scaled sum."""

    def add(self, counter: str, era: int, scaled: float) -> None:
        eras = self.sums.setdefault(counter, {})
        eras[era] = eras.get(era, 0.0) + scaled
        prune_eras(eras, max(eras))

    def learn_one(self, event: Event) -> None:
        for counter, era, scaled in contributions(event):
            self.add(counter, era, scaled)

    def merge(self, other: ItemStats) -> None:
        """Add another state (another worker's, another batch's) into this one."""
        for counter, eras in other.sums.items():
            for era, scaled in eras.items():
                self.add(counter, era, scaled)

    def value(self, counter: str, at_ms: int) -> float:
        """The decayed count of `counter` as seen at event time `at_ms`."""
        eras = self.sums.get(counter)
        return COUNTERS[counter].value_at(eras, at_ms) if eras else 0.0

    def listens(self, at_ms: int) -> float:
        return max(self.value("plays", at_ms), self.value("skips", at_ms) + self.value("completes", at_ms))

    def like_rate(self, at_ms: int, priors: RatePriors = RATE_PRIORS) -> float:
        likes = self.value("likes", at_ms)
        exposures = max(self.listens(at_ms), likes + self.value("dislikes", at_ms))
        return (likes + priors.strength * priors.like_rate) / (exposures + priors.strength)

    def skip_rate(self, at_ms: int, priors: RatePriors = RATE_PRIORS) -> float:
        skips = self.value("skips", at_ms)
        ended = skips + self.value("completes", at_ms)
        return (skips + priors.strength * priors.skip_rate) / (ended + priors.strength)

    def velocity(self, at_ms: int, counter: str = "heat_short") -> float:
        """Heat per hour: `heat · ln 2 / half-life` (a steady r per hour reads r)."""
        return self.value(counter, at_ms) * math.log(2) * _HOUR_MS / COUNTERS[counter].half_life_ms

    def trending(self, at_ms: int) -> float:
        """Short-term velocity minus the weekly baseline velocity, in heat per hour."""
        return self.velocity(at_ms, "heat_short") - self.velocity(at_ms, "heat_long")

    def summary(self, at_ms: int) -> dict[str, float]:
        """Everything a reader shows, decayed to `at_ms`."""
        out = {name: self.value(name, at_ms) for name in COUNTERS}
        out.update(
            listens=self.listens(at_ms),
            like_rate=self.like_rate(at_ms),
            skip_rate=self.skip_rate(at_ms),
            trending=self.trending(at_ms),
        )
        return out

    # Full-state form for a Redis hash: field `<counter>@<era>` → scaled sum.

    def to_fields(self) -> dict[str, float]:
        return {f"{name}@{era}": value for name, eras in self.sums.items() for era, value in eras.items()}

    @classmethod
    def from_fields(cls, fields: Mapping[str | bytes, str | bytes | float]) -> ItemStats:
        """Parse `to_fields()` (as written, or as Redis returns it: bytes); unknown fields are ignored."""
        stats = cls()
        for key, raw in fields.items():
            text = key.decode() if isinstance(key, bytes) else key
            name, _, era = text.partition("@")
            if name not in COUNTERS or not era.lstrip("-").isdigit():
                continue
            stats.add(name, int(era), float(raw))
        return stats


class ItemStatsTable(dict[str, ItemStats]):
    """Item statistics keyed by track_id."""

    def learn_one(self, event: Event) -> None:
        stats = self.get(event.track_id)
        if stats is None:
            stats = self[event.track_id] = ItemStats()
        stats.learn_one(event)

    def merge(self, other: Mapping[str, ItemStats]) -> None:
        for track_id, stats in other.items():
            self.setdefault(track_id, ItemStats()).merge(stats)


def top_trending(
    stats: Mapping[str, ItemStats], at_ms: int, k: int, min_trending: float = 0.0
) -> list[tuple[str, float]]:
    """The k tracks trending most at `at_ms` (score > `min_trending`), best first; ties by id."""
    scored = ((track_id, s.trending(at_ms)) for track_id, s in stats.items())
    rising = ((t, score) for t, score in scored if score > min_trending)
    return heapq.nsmallest(max(k, 0), rising, key=lambda pair: (-pair[1], pair[0]))


def top_trending_by_genre(
    stats: Mapping[str, ItemStats],
    genres_of: Mapping[str, Sequence[str]] | Callable[[str], Sequence[str]],
    at_ms: int,
    k: int,
    min_trending: float = 0.0,
) -> dict[str, list[tuple[str, float]]]:
    """For every genre present, its k most trending tracks (a track counts in each of its genres)."""
    lookup = genres_of if callable(genres_of) else (lambda t: genres_of.get(t, ()))
    by_genre: dict[str, list[tuple[str, float]]] = {}
    for track_id, s in stats.items():
        score = s.trending(at_ms)
        if score <= min_trending:
            continue
        for genre in lookup(track_id):
            by_genre.setdefault(genre, []).append((track_id, score))
    return {
        genre: heapq.nsmallest(max(k, 0), items, key=lambda pair: (-pair[1], pair[0]))
        for genre, items in sorted(by_genre.items())
    }
