"""Per-artist state in the dataflow: artist co-occurrence rows, keyed by artist name.

The per-user step (`flows.user_state`) reports each artist that entered a listener's history with
the artists already there; `artist_signals_of` sums a whole batch of those per artist (the new
artist gains one listener and a co-occurrence of `pair_weight(k)` with each partner, k the
history's artists with it; each partner gains the same with the new artist). `ArtistMemoryLogic`
holds each artist's `ArtistRow` in recovered keyed state and emits its full state once per batch;
`artist_memory_sink` overwrites the artist's sorted set (integer counts in
`schemas.values.ARTIST_COUNT_UNITS`) and its listener count. Counts are integer sums, so a replay
after a crash rewrites the values an uninterrupted run has (up to the row cut, see
`online_models.artist_memory`).
"""

from __future__ import annotations

import bisect
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bytewax.operators import StatefulBatchLogic

from flows.redis_io import PipelineSink
from flows.user_state import ProfileWrite
from online_models.artist_memory import ARTIST_MEMORY_CONFIG, ArtistRow, pair_weight
from schemas.keys import KeyLayout
from schemas.values import ARTIST_COUNT_UNITS

ArtistSignal = tuple[int, dict[str, int]]
"""(new listeners, partner → new co-occurrences in `ARTIST_COUNT_UNITS`) of one artist in one batch."""


def artist_signals_of(items: list[tuple[str, ProfileWrite]]) -> list[tuple[str, ArtistSignal]]:
    """A batch of per-user outputs → one signal per touched artist."""
    listeners: dict[str, int] = {}
    partners: dict[str, dict[str, int]] = {}
    for _, write in items:
        for artist, others in write.artists_entered:
            listeners[artist] = listeners.get(artist, 0) + 1
            row = partners.setdefault(artist, {})
            w = pair_weight(len(others) + 1)
            for other in others:
                row[other] = row.get(other, 0) + w
                back = partners.setdefault(other, {})
                back[artist] = back.get(artist, 0) + w
    return [(artist, (listeners.get(artist, 0), row)) for artist, row in partners.items()] + [
        (artist, (n, {})) for artist, n in listeners.items() if artist not in partners
    ]


@dataclass(frozen=True, slots=True)
class ArtistWrite:
    """One artist's state after a batch. `full`: the whole top (`neighbours`) replaces the sorted
    set; else `neighbours` are the partners of the top whose count changed or that entered it, and
    `removed` those that left it: applied to the last write, the same set."""

    listeners: int
    neighbours: list[tuple[str, int]]
    full: bool = True
    removed: tuple[str, ...] = ()


class ArtistMemoryLogic(StatefulBatchLogic[ArtistSignal, ArtistWrite, bytes]):
    """One artist's row: sums the batch's signals, emits its state once (the top partners as a
    change to the last write, after the first).

    **Top-N without re-ranking the row.** Counts only grow, so a partner that was neither in the
    last top N nor touched since still has N partners ranked before it: the new top N is the top N
    of (last top N ∪ touched), the same list `ArtistRow.top` gives (ties by name, a total order).
    A cut keeps the strongest, a superset of the top. The top is kept sorted as `(−count, name)`,
    so a touched partner moves by one bisection. The first batch after a resume ranks the whole
    row and rewrites the whole set."""

    def __init__(self, resume_state: bytes | None) -> None:
        units = ARTIST_COUNT_UNITS
        self.row = (pickle.loads(resume_state).in_units(units) if resume_state is not None
                    else ArtistRow(units=units))
        self.top: list[tuple[int, str]] | None = None
        """The last write's top as sorted `(−count, partner)`; None = rank the whole row next."""
        self.written: dict[str, int] = {}
        """The same top as partner → count."""

    def on_batch(self, values: list[ArtistSignal]) -> tuple[Iterable[ArtistWrite], bool]:
        row = self.row
        touched: set[str] = set()
        for listeners, partners in values:
            row.learn_one(listeners, partners)
            touched.update(partners)
        k = ARTIST_MEMORY_CONFIG.neighbours_written
        top, written = self.top, self.written
        if top is None:
            neighbours = row.top(k)
            self.top = [(-n, partner) for partner, n in neighbours]
            self.written = dict(neighbours)
            return [ArtistWrite(row.listeners, neighbours)], StatefulBatchLogic.RETAIN
        counts = row.counts
        entered: set[str] = set()
        left: set[str] = set()
        for partner in touched:
            n = counts.get(partner)
            was = written.get(partner)
            if n is None or n == was:
                continue
            if was is not None:
                del top[bisect.bisect_left(top, (-was, partner))]
                del written[partner]
            entry = (-n, partner)
            if len(top) < k or entry < top[-1]:
                bisect.insort(top, entry)
                written[partner] = n
                entered.add(partner)
                left.discard(partner)
                if len(top) > k:
                    out = top.pop()[1]
                    del written[out]
                    entered.discard(out)
                    left.add(out)
        changed = [(partner, written[partner]) for partner in sorted(entered)]
        removed = tuple(sorted(left))
        return [ArtistWrite(row.listeners, changed, full=False, removed=removed)], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        row = ArtistRow(self.row.listeners, self.row.counts, units=ARTIST_COUNT_UNITS)
        return pickle.dumps(row, protocol=pickle.HIGHEST_PROTOCOL)


def fill_artist_memory(pipe: Any, keys: KeyLayout, items: list[tuple[str, ArtistWrite]]) -> None:
    """Each touched artist's listener count, and its sorted set: replaced by a full write, changed
    by a partial one (a later write of one artist applies after an earlier one)."""
    listeners: dict[str, int] = {}
    rows: dict[str, tuple[bool, dict[str, int], set[str]]] = {}
    for artist, write in items:
        listeners[artist] = write.listeners
        if write.full:
            rows[artist] = (True, dict(write.neighbours), set())
            continue
        full, adds, removes = rows.setdefault(artist, (False, {}, set()))
        for partner in write.removed:
            adds.pop(partner, None)
            if not full:
                removes.add(partner)
        for partner, n in write.neighbours:
            adds[partner] = n
            removes.discard(partner)
    pipe.hset(keys.artist_listeners, mapping=listeners)
    for artist, (full, adds, removes) in rows.items():
        key = keys.artist_neighbours(artist)
        if full:
            pipe.delete(key)
        elif removes:
            pipe.zrem(key, *sorted(removes))
        if adds:
            pipe.zadd(key, adds)


def artist_memory_sink(url: str, keys: KeyLayout) -> PipelineSink:
    return PipelineSink(url, keys, fill_artist_memory, "artist memory write")
