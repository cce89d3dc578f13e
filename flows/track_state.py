"""Per-track state in the dataflow: item statistics and co-listening rows, keyed by track_id.

The per-user step (`flows.user_state`) hands on each *applied* event with its track and the
co-listening pairs of the listener's window (`online_models.co_listening.ListeningWindow`).
`flows.user_state.track_signals_of` turns a whole batch of them into track signals (`TrackSignals`):
the events' item-statistics contributions (`online_models.item_stats.contributions`) on their own
tracks and the pairs in both directions, summed per track (addition commutes, so summing before
applying changes nothing but float rounding). Keyed by track_id they reach `TrackStateLogic`, whose
keyed state holds the track's `ItemStats` and its co-listening row, and which emits the track's
**full state** once per batch (`TrackWrite`).

Why keyed state and full-state writes, not `HINCRBYFLOAT` from the per-user step: the sums are
commutative but not idempotent. After a crash Bytewax resumes this state from the snapshot taken
with the offsets, replays the events after it, and the sink overwrites each touched track's keys
with the recomputed state, so a replay ends where an uninterrupted run ends (up to float rounding
of the order of additions, ~1e-16 relative).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field

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

    def add_track(self, track: Track) -> None:
        """A track's genres alone: a held event's track arrived (its contributions came on receipt)."""
        self._of(track.track_id).genres = tuple(track.genres)

    def add_pairs(self, pairs: list[PairIncrement]) -> None:
        """Co-listening increments, each added to both tracks' rows."""
        weight, ts_ms = -1.0, -1
        era, scaled = 0, 0.0
        of = self._of
        for pair in pairs:
            if (pair.weight, pair.ts_ms) != (weight, ts_ms):  # one event's pairs share both: scale once
                weight, ts_ms = pair.weight, pair.ts_ms
                era, scaled = PAIR_DECAY.scaled(weight, ts_ms)
            for track_id, neighbour in ((pair.a, pair.b), (pair.b, pair.a)):
                signal = of(track_id)
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
    stats_changed: bool = field(default=True, compare=False)
    """False: stats, genres and time are those of the last write (only the row changed), so the
    sink need not write them again (the floats are the same)."""


def top_neighbours(store: CoListeningStore, track_id: str, k: int) -> tuple[list[tuple[str, float]], int]:
    """`store.neighbours(track_id, k)` (the same floats in the same order) in one cheap pass, and the
    era its ranking was read at (the row's newest).

    `CoListeningStore.neighbours` decays every neighbour's count with `math.fsum` to rank the row, and
    again for the k returned. All counts decay alike, so the rank is the count at the start of the
    row's newest era; a neighbour whose count sits in one era (nearly all: an era is 64 half-lives)
    needs one multiplication by its era's factor, computed once per era. `fsum` of one product is that
    product, so the result is bit-identical (tested against the store)."""
    row = store.rows.get(track_id)
    if not row or k <= 0:
        return [], -1
    decay = store.decay
    newest_era = max(max(eras) for eras in row.values())
    reference_ms = newest_era * decay.era_ms
    factors: dict[int, float] = {}
    scored: list[tuple[float, str]] = []
    for neighbour, eras in row.items():
        if len(eras) == 1:
            for era, scaled in eras.items():
                factor = factors.get(era)
                if factor is None:
                    factor = factors[era] = decay.factor(era, reference_ms)
                scored.append((-(scaled * factor), neighbour))
        else:
            scored.append((-decay.value_at(eras, reference_ms), neighbour))
    at_ms = store.last_ms[track_id]
    # sorted()[:k] is heapq.nsmallest's own definition, in C (the (score, id) pairs are distinct).
    scored.sort()
    return [(n, decay.value_at(row[n], at_ms)) for _, n in scored[:k]], newest_era


class TrackState:
    """One track's item statistics and co-listening row, and what the sink needs to write them.

    **Top-N without re-ranking the row.** A batch only *adds* to some neighbours' counts, and all counts
    decay alike, so a neighbour that was neither in the last top N nor touched since still has N
    neighbours at least as strong: the new top N is the top N of (last top N ∪ touched). That is what
    `write` ranks, O(N + touched) instead of O(row), reading each count at the start of the newest era
    as the store does (for a count in that era alone, its stored sum). The first write, the first
    after a resume and the first in a new era rank the whole row (`top_neighbours`). Either way the
    result equals `CoListeningStore.neighbours`, float for float (tested).
    """

    __slots__ = ("genres", "last_stats", "max_era", "newest_ms", "row", "stats", "top", "top_era",
                 "touched", "track_id")

    def __init__(self, track_id: str = "") -> None:
        self.track_id = track_id
        self.stats = ItemStats()
        self.row = CoListeningStore()
        """A store holding this track's row only (`rows[track_id]`)."""
        self.genres: tuple[str, ...] = ()
        self.newest_ms = -1
        self.max_era = -1
        """The newest co-listening era ever added to the row."""
        self.top: list[str] = []
        """The neighbours of the last row written, best first."""
        self.top_era = -2
        """The era `top` was ranked at; ≠ `max_era` = rank the whole row next time."""
        self.touched: set[str] = set()
        """Neighbours added to since the last write."""
        self.last_stats: tuple[dict[str, float], float, float, float, float] | None = None
        """The last write's stats (fields, trending, like, skip, listens) while nothing but the row
        changed since; None = compute them at the next write."""

    def apply(self, signal: TrackSignal) -> None:
        """Add one signal's item statistics and co-listening counts."""
        stats = self.stats
        if signal.items:
            self.last_stats = None
            for (counter, era), scaled in signal.items.items():
                stats.add(counter, era, scaled)
        if signal.genres is not None and signal.genres != self.genres:
            self.genres = signal.genres
            self.last_stats = None
        if signal.newest_ms > self.newest_ms:
            self.newest_ms = signal.newest_ms
            self.last_stats = None
        if not signal.pairs:
            return
        store, track_id, ts_ms, touched = self.row, self.track_id, signal.pairs_ms, self.touched
        row = store.rows.get(track_id)
        for neighbour, eras in signal.pairs.items():
            touched.add(neighbour)
            held = row.get(neighbour) if row is not None else None
            for era, scaled in eras.items():
                if era > self.max_era:
                    self.max_era = era
                if held is not None and era in held:
                    # What `store.add` does here (no new era to prune, no new neighbour to cut for),
                    # without its overhead: the common case.
                    held[era] += scaled
                else:
                    store.add(track_id, neighbour, era, scaled, ts_ms)
                    row = store.rows.get(track_id)
                    held = row.get(neighbour) if row is not None else None
        store.last_ms[track_id] = max(store.last_ms.get(track_id, ts_ms), ts_ms)

    def write(self) -> TrackWrite:
        """The full state; the co-listening row only when it changed since the last write."""
        neighbours = self._neighbours() if self.touched else None
        self.touched = set()
        stats, at = self.stats, self.newest_ms
        if at < 0:  # only co-listening so far: no stats to read
            return TrackWrite({}, self.genres, at, 0.0, 0.0, 0.0, 0.0, neighbours)
        if self.last_stats is not None:
            return TrackWrite(*self._stats_write(self.last_stats, neighbours), stats_changed=False)
        self.last_stats = (stats.to_fields(), stats.trending(at), stats.like_rate(at),
                           stats.skip_rate(at), stats.listens(at))
        return TrackWrite(*self._stats_write(self.last_stats, neighbours))

    def _stats_write(self, last: tuple, neighbours: list[tuple[str, float]] | None) -> tuple:
        fields, trending, like_rate, skip_rate, listens = last
        return fields, self.genres, self.newest_ms, trending, like_rate, skip_rate, listens, neighbours

    def _neighbours(self) -> list[tuple[str, float]]:
        # Ranked at an older era, `top` is still the right set, but rank once in full at a new era.
        top = self._top_of_candidates() if self.top_era == self.max_era else None
        if top is None:
            top, self.top_era = top_neighbours(self.row, self.track_id, NEIGHBOURS_KEPT)
        self.top = [n for n, _ in top]
        return top

    def _top_of_candidates(self) -> list[tuple[str, float]] | None:
        row = self.row.rows.get(self.track_id)
        if not row:
            return None
        era, decay = self.max_era, self.row.decay
        reference_ms = era * decay.era_ms  # the store's ranking time: the newest era's start
        # Scores are negated counts (nsmallest = strongest). In the newest era alone (the usual
        # case), a count at that era's start is its stored sum.
        scored: list[tuple[float, str]] = []
        for neighbour in self.top:
            eras = row.get(neighbour)
            if eras is not None:  # else cut from a full row
                count = eras[era] if len(eras) == 1 and era in eras else decay.value_at(eras, reference_ms)
                scored.append((-count, neighbour))
        # A touched neighbour weaker than every last-top member stays out: N are stronger.
        bar = max(scored)[0] if len(scored) >= NEIGHBOURS_KEPT else math.inf
        last_top = set(self.top)
        for neighbour in self.touched:
            eras = row.get(neighbour)
            if eras is None or neighbour in last_top:
                continue
            count = eras[era] if len(eras) == 1 and era in eras else decay.value_at(eras, reference_ms)
            if -count <= bar:
                scored.append((-count, neighbour))
        at_ms = self.row.last_ms[self.track_id]
        factor = decay.factor(era, at_ms)
        out = []
        scored.sort()  # nsmallest = sorted()[:N], in C
        for _, neighbour in scored[:NEIGHBOURS_KEPT]:
            eras = row[neighbour]
            out.append((neighbour, eras[era] * factor if len(eras) == 1 and era in eras
                        else decay.value_at(eras, at_ms)))
        return out

    # Snapshot: plain containers, no per-track copy of the models' configs; the ranking cache is
    # rebuilt (a resumed track ranks its whole row once).

    def __getstate__(self) -> tuple:
        return (1, self.track_id, self.stats.sums, self.row.rows.get(self.track_id),
                self.row.last_ms.get(self.track_id), self.genres, self.newest_ms, self.touched)

    def __setstate__(self, state: tuple) -> None:
        _, track_id, sums, row, last_ms, genres, newest_ms, touched = state
        self.__init__(track_id)
        self.stats.sums = sums
        if row:
            self.row.rows[track_id] = row
            self.row.last_ms[track_id] = last_ms
            self.max_era = max(max(eras) for eras in row.values())
        self.genres, self.newest_ms, self.touched = genres, newest_ms, touched


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
        for signal in values:
            state.apply(signal)
        return ([state.write()], StatefulBatchLogic.RETAIN)

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)
