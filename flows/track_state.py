"""Per-track state in the dataflow: item statistics and co-listening rows, keyed by track_id.

The per-user step (`flows.user_state`) turns each *applied* event into track signals: the event's
item-statistics contributions (`online_models.item_stats.contributions`) for its own track, and the
co-listening pairs of the listener's window (`online_models.co_listening.ListeningWindow`) in both
directions. It sums them per track for its batch (`TrackSignals`: addition commutes, so summing
before applying changes nothing but float rounding) and hands them on in its output. The flow
flat-maps them by track_id into `TrackStateLogic`, whose keyed state holds the track's `ItemStats`
and its co-listening row, and emits the track's **full state** once per batch (`TrackWrite`).

Why keyed state and full-state writes, not `HINCRBYFLOAT` from the per-user step: the sums are
commutative but not idempotent. After a crash Bytewax resumes this state from the snapshot taken
with the offsets, replays the events after it, and the sink overwrites each touched track's keys
with the recomputed state, so a replay ends where an uninterrupted run ends (up to float rounding
of the order of additions, ~1e-16 relative).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass

from bytewax.operators import StatefulBatchLogic

from online_models.co_listening import CO_LISTENING_CONFIG, CoListeningStore, PairIncrement
from online_models.decay import Decay
from online_models.item_stats import ItemStats, contributions
from schemas.events import Event
from schemas.keys import NEIGHBOURS_KEPT
from schemas.tracks import Track

PAIR_DECAY = Decay(CO_LISTENING_CONFIG.half_life_ms)
"""The co-listening half-life, as `CoListeningStore` scales its increments."""


class TrackSignal:
    """What one user's batch of applied events adds to one track (already scaled per era)."""

    __slots__ = ("genres", "items", "newest_ms", "pairs", "pairs_ms", "track_id")

    def __init__(self, track_id: str) -> None:
        self.track_id = track_id
        self.items: dict[tuple[str, int], float] = {}
        """(counter, era) → scaled sum of the item-statistics contributions."""
        self.pairs: dict[str, dict[int, float]] = {}
        """neighbour → era → scaled co-listening count added to this track's row."""
        self.genres: tuple[str, ...] | None = None
        """The track's genres from the catalog; None when no event of the batch had its track."""
        self.newest_ms = -1
        """Newest event time of an event on this track; −1 = none (only pairs touched it)."""
        self.pairs_ms = -1
        """Newest event time of a pair added to the row."""

    def __reduce__(self) -> tuple:
        # Signals cross workers (keyed by track): a compact tuple, no per-object dict.
        return (_signal, (self.track_id, self.items, self.pairs, self.genres, self.newest_ms,
                          self.pairs_ms))

    def __repr__(self) -> str:
        return (f"TrackSignal({self.track_id!r}, items={len(self.items)}, pairs={len(self.pairs)}, "
                f"newest_ms={self.newest_ms})")


def _signal(track_id: str, items: dict, pairs: dict, genres: tuple[str, ...] | None, newest_ms: int,
            pairs_ms: int) -> TrackSignal:
    signal = TrackSignal(track_id)
    signal.items, signal.pairs, signal.genres = items, pairs, genres
    signal.newest_ms, signal.pairs_ms = newest_ms, pairs_ms
    return signal


class TrackSignals:
    """Sums one user batch's track signals per track, as events are applied."""

    __slots__ = ("by_track",)

    def __init__(self) -> None:
        self.by_track: dict[str, TrackSignal] = {}

    def _of(self, track_id: str) -> TrackSignal:
        signal = self.by_track.get(track_id)
        if signal is None:
            signal = self.by_track[track_id] = TrackSignal(track_id)
        return signal

    def add_event(self, event: Event, track: Track | None) -> None:
        """The event's item-statistics contributions, on its own track."""
        signal = self._of(event.track_id)
        items = signal.items
        for counter, era, scaled in contributions(event):
            key = (counter, era)
            items[key] = items.get(key, 0.0) + scaled
        if track is not None:
            signal.genres = tuple(track.genres)
        if event.ts > signal.newest_ms:
            signal.newest_ms = event.ts

    def add_pairs(self, pairs: list[PairIncrement]) -> None:
        """Co-listening increments, each added to both tracks' rows."""
        scale_for: tuple[float, int] | None = None
        era = 0
        scaled = 0.0
        for pair in pairs:
            # One event's pairs share weight and time: scale once.
            if scale_for != (pair.weight, pair.ts_ms):
                scale_for = (pair.weight, pair.ts_ms)
                era, scaled = PAIR_DECAY.scaled(pair.weight, pair.ts_ms)
            self._add_pair(pair.a, pair.b, era, scaled, pair.ts_ms)
            self._add_pair(pair.b, pair.a, era, scaled, pair.ts_ms)

    def _add_pair(self, track_id: str, neighbour: str, era: int, scaled: float, ts_ms: int) -> None:
        signal = self._of(track_id)
        eras = signal.pairs.get(neighbour)
        if eras is None:
            signal.pairs[neighbour] = {era: scaled}
        else:
            eras[era] = eras.get(era, 0.0) + scaled
        if ts_ms > signal.pairs_ms:
            signal.pairs_ms = ts_ms

    def keyed(self) -> list[tuple[str, TrackSignal]]:
        """The signals keyed by track_id, as the track-keyed step takes them."""
        return list(self.by_track.items())


@dataclass(frozen=True, slots=True)
class TrackWrite:
    """One track's full state after a batch, for the sink (keyed by track_id in the stream)."""

    fields: dict[str, float]
    """`ItemStats.to_fields()`: the whole stats hash; empty until an event on the track is seen."""
    genres: tuple[str, ...]
    at_ms: int
    """The newest event time the track saw: the time trending and the rates are read at."""
    trending: float
    like_rate: float
    skip_rate: float
    listens: float
    neighbours: list[tuple[str, float]] | None
    """The top `NEIGHBOURS_KEPT` (track_id, decayed count), best first; None = the row did not change
    in this batch (its last write still holds)."""


class TrackState:
    """One track's item statistics and co-listening row, and what the sink needs to write them."""

    __slots__ = ("genres", "newest_ms", "row", "stats", "track_id")

    def __init__(self, track_id: str = "") -> None:
        self.track_id = track_id
        self.stats = ItemStats()
        self.row = CoListeningStore()
        """A store holding this track's row only (`rows[track_id]`)."""
        self.genres: tuple[str, ...] = ()
        self.newest_ms = -1

    def apply(self, signal: TrackSignal) -> bool:
        """Add one signal; True when the co-listening row changed."""
        stats = self.stats
        for (counter, era), scaled in signal.items.items():
            stats.add(counter, era, scaled)
        if signal.genres is not None:
            self.genres = signal.genres
        if signal.newest_ms > self.newest_ms:
            self.newest_ms = signal.newest_ms
        if not signal.pairs:
            return False
        row, track_id, ts_ms = self.row, self.track_id, signal.pairs_ms
        for neighbour, eras in signal.pairs.items():
            for era, scaled in eras.items():
                row.add(track_id, neighbour, era, scaled, ts_ms)
        return True

    def write(self, neighbours_changed: bool) -> TrackWrite:
        stats, at = self.stats, self.newest_ms
        if at < 0:  # only co-listening so far: no stats to read
            return TrackWrite({}, self.genres, at, 0.0, 0.0, 0.0, 0.0, self._neighbours(neighbours_changed))
        return TrackWrite(stats.to_fields(), self.genres, at, stats.trending(at), stats.like_rate(at),
                          stats.skip_rate(at), stats.listens(at), self._neighbours(neighbours_changed))

    def _neighbours(self, changed: bool) -> list[tuple[str, float]] | None:
        return self.row.neighbours(self.track_id, NEIGHBOURS_KEPT) if changed else None

    # Snapshot: plain containers, no per-track copy of the models' configs.

    def __getstate__(self) -> tuple:
        return (1, self.track_id, self.stats.sums, self.row.rows.get(self.track_id),
                self.row.last_ms.get(self.track_id), self.genres, self.newest_ms)

    def __setstate__(self, state: tuple) -> None:
        _, track_id, sums, row, last_ms, genres, newest_ms = state
        self.__init__(track_id)
        self.stats.sums = sums
        if row is not None:
            self.row.rows[track_id] = row
            self.row.last_ms[track_id] = last_ms
        self.genres, self.newest_ms = genres, newest_ms


class TrackStateLogic(StatefulBatchLogic[TrackSignal, TrackWrite, bytes]):
    """Applies a batch of signals for one track, then emits its full state once: one write per batch.

    The snapshot is the pickled `TrackState` (exact floats), recovered with the offsets."""

    def __init__(self, resume_state: bytes | None) -> None:
        self.state: TrackState = pickle.loads(resume_state) if resume_state is not None else TrackState()

    def on_batch(self, values: list[TrackSignal]) -> tuple[Iterable[TrackWrite], bool]:
        state = self.state
        if not state.track_id:
            # Bytewax builds the logic without its key; the first signal names the track.
            state.track_id = values[0].track_id
        changed = False
        for signal in values:
            changed |= state.apply(signal)
        return ([state.write(changed)], StatefulBatchLogic.RETAIN)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)
