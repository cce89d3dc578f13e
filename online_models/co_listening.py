"""Co-listening: tracks one listener enjoys close together in time become neighbours.

This is the streaming collaborative signal. Two parts:

1. **`ListeningWindow`** (per user, in the user's keyed state): the listener's last `window_size`
   (20) positive tracks within `window_span_ms` (2 h). A *positive* is a positive event type
   (`schemas.event_types`: a complete or a like). When a positive arrives for a track not
   already in the window, `learn_one` emits one `PairIncrement(a, b, 1.0, ts)` per track in the
   window (a < b), then adds the track. A track already in the window (a like after its complete)
   emits nothing, so one listen does not count twice. Entries older than the span, and beyond the
   size, fall out. Nothing but the event stream decides the output: deterministic.
2. **`CoListeningStore`** (keyed by track): decayed pair counts with a 30-day half-life, stored per
   era scaled to a fixed reference time (as in `online_models.decay`), so increments add in any
   order and across workers. Each track keeps a row of neighbours.

**Pruning rule.** A row may grow to `2 · capacity` neighbours (`capacity` = 4 × `max_neighbours`
= 200); when it would exceed that, it is cut back to the `capacity` strongest by decayed count
(ties by track id). Decayed counts all shrink at the same rate, so "strongest" does not depend on
when the cut happens. Within the capacity everything is exact and order-independent; a neighbour
cut from a full row and seen again later restarts from zero, which can only affect the weak tail,
never the `max_neighbours` (50) that `neighbours()` returns unless the tail catches up with them.

>>> H = 3_600_000
>>> window, store = ListeningWindow(), CoListeningStore()
>>> from schemas.events import Event
>>> def complete(track_id, ts):
...     return Event(event_id=track_id + str(ts), user_id="u", track_id=track_id, type="complete", ts=ts)
>>> for track_id, ts in [("a", 0), ("b", 60_000), ("c", 3 * H)]:   # c comes after the 2 h span
...     for pair in window.learn_one(complete(track_id, ts)):
...         store.learn_one(pair)
>>> [(n, round(c, 3)) for n, c in store.neighbours("a", k=5, at_ms=60_000)]
[('b', 1.0)]
>>> store.neighbours("c", k=5)
[]
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from online_models.decay import Decay, prune_eras
from schemas.event_types import POSITIVE_TYPES
from schemas.events import Event

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS


@dataclass(frozen=True)
class CoListeningConfig:
    window_size: int = 20
    window_span_ms: int = 2 * _HOUR_MS
    half_life_ms: int = 30 * _DAY_MS
    max_neighbours: int = 50
    """N: how many neighbours a track is queried for."""
    capacity_factor: int = 4
    """A row keeps `capacity_factor × N` neighbours after a cut, and is cut at twice that."""

    @property
    def capacity(self) -> int:
        return self.capacity_factor * self.max_neighbours


CO_LISTENING_CONFIG = CoListeningConfig()


class PairIncrement(NamedTuple):
    """Add `weight` to the co-listening count of tracks `a` and `b` (a < b) at event time `ts_ms`.

    A named tuple: every positive makes up to a window of them, and a tuple is made in C."""

    a: str
    b: str
    weight: float
    ts_ms: int


_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")


@dataclass
class ListeningWindow:
    """One listener's recent positives: `(track_id, ts_ms)` in arrival order."""

    entries: list[tuple[str, int]] = field(default_factory=list)
    config: CoListeningConfig = CO_LISTENING_CONFIG

    def learn_one(self, event: Event) -> list[PairIncrement]:
        """The pair increments a new event causes (none unless it is a new positive)."""
        if event.type not in POSITIVE_TYPES:
            return []
        ts, track_id, span = event.ts, event.track_id, self.config.window_span_ms
        since = ts - span
        entries = self.entries = [entry for entry in self.entries if entry[1] >= since]
        for other, _ in entries:
            if other == track_id:
                return []
        # `PairIncrement(a, b, 1.0, ts)` is this tuple; `tuple.__new__` makes it without a Python call.
        make = tuple.__new__
        pairs = [
            make(PairIncrement, (other, track_id, 1.0, ts) if other < track_id
                 else (track_id, other, 1.0, ts))
            for other, at in entries
            if abs(ts - at) <= span
        ]
        entries.append((track_id, ts))
        if len(entries) > self.config.window_size:
            del entries[: len(entries) - self.config.window_size]
        return pairs

    def to_bytes(self) -> bytes:
        """`u8 count`, `i64 newest ts`, then per entry `u16 length, UTF-8 id, u32 ms before newest`."""
        entries = self.entries[-255:]
        newest = max((at for _, at in entries), default=0)
        out = bytearray(_U8.pack(len(entries)) + _I64.pack(newest))
        for track_id, at in entries:
            data = track_id.encode()
            out += _U16.pack(len(data)) + data + _U32.pack(min(newest - at, 2**32 - 1))
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes, config: CoListeningConfig = CO_LISTENING_CONFIG) -> ListeningWindow:
        (count,) = _U8.unpack_from(data, 0)
        (newest,) = _I64.unpack_from(data, 1)
        pos, entries = 9, []
        for _ in range(count):
            (length,) = _U16.unpack_from(data, pos)
            track_id = data[pos + 2 : pos + 2 + length].decode()
            (back,) = _U32.unpack_from(data, pos + 2 + length)
            entries.append((track_id, newest - back))
            pos += 2 + length + 4
        return cls(entries=entries, config=config)


class CoListeningStore:
    """Decayed co-listening counts per track pair, with a bounded row of neighbours per track."""

    def __init__(self, config: CoListeningConfig = CO_LISTENING_CONFIG) -> None:
        self.config = config
        self.decay = Decay(config.half_life_ms)
        self.rows: dict[str, dict[str, dict[int, float]]] = {}
        """track → neighbour → era → scaled count."""
        self.last_ms: dict[str, int] = {}
        """track → the latest event time added to its row (a max: commutative too)."""

    def learn_one(self, pair: PairIncrement) -> None:
        era, scaled = self.decay.scaled(pair.weight, pair.ts_ms)
        self.add(pair.a, pair.b, era, scaled, pair.ts_ms)
        self.add(pair.b, pair.a, era, scaled, pair.ts_ms)

    def learn_many(self, pairs: Iterable[PairIncrement]) -> None:
        for pair in pairs:
            self.learn_one(pair)

    def add(self, track: str, neighbour: str, era: int, scaled: float, ts_ms: int) -> None:
        """Add one direction of an already scaled increment (what a keyed flow step applies)."""
        if track == neighbour:
            return
        self.last_ms[track] = max(self.last_ms.get(track, ts_ms), ts_ms)
        row = self.rows.setdefault(track, {})
        eras = row.setdefault(neighbour, {})
        eras[era] = eras.get(era, 0.0) + scaled
        prune_eras(eras, max(eras))
        if len(row) > 2 * self.config.capacity:
            self._cut(row)

    def merge(self, other: CoListeningStore) -> None:
        """Add another store's counts (another worker's) into this one."""
        for track, row in other.rows.items():
            last = other.last_ms[track]
            for neighbour, eras in row.items():
                for era, scaled in eras.items():
                    self.add(track, neighbour, era, scaled, last)

    def _ranked(self, row: dict[str, dict[int, float]]) -> list[tuple[str, float]]:
        """Neighbours with their count at the start of the row's newest era, strongest first."""
        newest = max(max(eras) for eras in row.values())
        decay = self.decay
        at = newest * decay.era_ms
        # A count in one era (nearly all) is one product: `fsum` of it is that product, so skip
        # `value_at` and compute each era's factor once. Sorting (−count, id) pairs is the same
        # order as the key (−count, id), without a Python call per neighbour.
        factors: dict[int, float] = {}
        scored: list[tuple[float, str]] = []
        for n, eras in row.items():
            if len(eras) == 1:
                for era, scaled in eras.items():
                    factor = factors.get(era)
                    if factor is None:
                        factor = factors[era] = decay.factor(era, at)
                    scored.append((-(scaled * factor), n))
            else:
                scored.append((-decay.value_at(eras, at), n))
        scored.sort()
        return [(n, -count) for count, n in scored]

    def _cut(self, row: dict[str, dict[int, float]]) -> None:
        for neighbour, _ in self._ranked(row)[self.config.capacity :]:
            del row[neighbour]

    def neighbours(
        self, track_id: str, k: int | None = None, at_ms: int | None = None
    ) -> list[tuple[str, float]]:
        """The k strongest neighbours of a track, best first (ties by id), with their decayed counts.

        The counts are decayed to `at_ms`, by default to the row's latest event time (the order is
        the same at any time)."""
        row = self.rows.get(track_id)
        if not row:
            return []
        k = self.config.max_neighbours if k is None else k
        at = self.last_ms[track_id] if at_ms is None else at_ms
        return [(n, self.decay.value_at(row[n], at)) for n, _ in self._ranked(row)[: max(k, 0)]]

    def __len__(self) -> int:
        return len(self.rows)
