"""Per-artist state in the dataflow: artist co-occurrence rows, keyed by artist name.

The per-user step (`flows.user_state`) reports each artist that entered a listener's history with
the artists already there; `artist_signals_of` sums a whole batch of those per artist (the new
artist gains one listener and one co-occurrence with each partner; each partner gains one with the
new artist). `ArtistMemoryLogic` holds each artist's `ArtistRow` in recovered keyed state and emits
its full state once per batch; `artist_memory_sink` overwrites the artist's sorted set and its
listener count. Counts are integer sums, so a replay after a crash rewrites the values an
uninterrupted run has (up to the row cut, see `online_models.artist_memory`).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bytewax.operators import StatefulBatchLogic

from flows.redis_io import PipelineSink
from flows.user_state import ProfileWrite
from online_models.artist_memory import ARTIST_MEMORY_CONFIG, ArtistRow
from schemas.keys import KeyLayout

ArtistSignal = tuple[int, dict[str, int]]
"""(new listeners, partner → new co-occurrences) of one artist in one batch."""


def artist_signals_of(items: list[tuple[str, ProfileWrite]]) -> list[tuple[str, ArtistSignal]]:
    """A batch of per-user outputs → one signal per touched artist."""
    listeners: dict[str, int] = {}
    partners: dict[str, dict[str, int]] = {}
    for _, write in items:
        for artist, others in write.artists_entered:
            listeners[artist] = listeners.get(artist, 0) + 1
            row = partners.setdefault(artist, {})
            for other in others:
                row[other] = row.get(other, 0) + 1
                back = partners.setdefault(other, {})
                back[artist] = back.get(artist, 0) + 1
    return [(artist, (listeners.get(artist, 0), row)) for artist, row in partners.items()] + [
        (artist, (n, {})) for artist, n in listeners.items() if artist not in partners
    ]


@dataclass(frozen=True, slots=True)
class ArtistWrite:
    listeners: int
    neighbours: list[tuple[str, int]]


class ArtistMemoryLogic(StatefulBatchLogic[ArtistSignal, ArtistWrite, bytes]):
    """One artist's row: sums the batch's signals, emits the full state once."""

    def __init__(self, resume_state: bytes | None) -> None:
        self.row = pickle.loads(resume_state) if resume_state is not None else ArtistRow()

    def on_batch(self, values: list[ArtistSignal]) -> tuple[Iterable[ArtistWrite], bool]:
        for listeners, partners in values:
            self.row.learn_one(listeners, partners)
        write = ArtistWrite(self.row.listeners, self.row.top(ARTIST_MEMORY_CONFIG.neighbours_written))
        return [write], StatefulBatchLogic.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(ArtistRow(self.row.listeners, self.row.counts), protocol=pickle.HIGHEST_PROTOCOL)


def fill_artist_memory(pipe: Any, keys: KeyLayout, items: list[tuple[str, ArtistWrite]]) -> None:
    """Each touched artist's row and listener count, full state (a later state supersedes)."""
    latest = dict(items)
    pipe.hset(keys.artist_listeners, mapping={a: w.listeners for a, w in latest.items()})
    for artist, write in latest.items():
        key = keys.artist_neighbours(artist)
        pipe.delete(key)
        if write.neighbours:
            pipe.zadd(key, dict(write.neighbours))


def artist_memory_sink(url: str, keys: KeyLayout) -> PipelineSink:
    return PipelineSink(url, keys, fill_artist_memory, "artist memory write")
