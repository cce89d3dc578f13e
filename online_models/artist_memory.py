"""Artist-level collaborative memory: which artists the same listeners enjoy, from whole histories.

Two learners, both pure:

1. **`ArtistHistory`** (per user, in the user's keyed state): the distinct artists of the listener's
   positive events (`schemas.event_types`), most recent last, at most `history_size`. When a
   positive brings an artist not in the history, `learn_one` returns the artists already there:
   the new artist now co-occurs with each of them in this listener's taste. An artist already in the
   history only moves to the end (one listener counts once per pair). No time window: a listener's
   whole (bounded) history counts, not the last two hours.
2. **`ArtistRow`** (per artist, in the artist-keyed state): `listeners` (how many histories the
   artist entered) and `counts` (co-occurrence with each partner artist, in `ARTIST_COUNT_UNITS`). A pair
   a listener forms counts `pair_weight(k)`: 1/k^γ of a listener, k the distinct artists of their
   history once the new one is in (γ = `listener_weight`). A listener of a few artists says more
   about each pair than one of fifty does (the inverse user frequency of item-based collaborative
   filtering; docs/quality.md, "Fifth pass"). The weight is the one at the time the pair forms, so
   a history that grows later does not re-weigh its old pairs (that would cost k² updates per new
   artist). Increments are integers, so rows are the same in any order.

**Similarity** is read at serving time as an (asymmetric) cosine over `counts[b] / ARTIST_COUNT_UNITS` and
the listener counts (`ranking.collaborative`), so a popular partner does not win by popularity alone.

**Bounds and what they approximate** (docs/quality.md measures it against the exact computation):
a history keeps `history_size` artists (an evicted artist that comes back counts as a new listener
of it); a row keeps at most `2 · row_capacity` partners and, when it would grow past that, is cut to
the `row_capacity` strongest (ties by name). Below the cut everything is exact.

>>> from schemas.events import Event
>>> def like(artist_track, ts):
...     return Event(event_id=f"e{ts}", user_id="u", track_id=artist_track, type="like", ts=ts)
>>> history = ArtistHistory()
>>> history.learn_one(like("t1", 1), "Muse"), history.learn_one(like("t2", 2), "Blur")
([], ['Muse'])
>>> history.learn_one(like("t3", 3), "Muse")  # already there: no new pair
>>> pair_weight(2), pair_weight(16)  # units: the second artist of a history, the 16th
(55109, 32768)
>>> row = ArtistRow()
>>> row.learn_one(1, {"Blur": 1, "Oasis": 2})
>>> row.listeners, row.top(5)
(1, [('Oasis', 2), ('Blur', 1)])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.event_types import POSITIVE_TYPES
from schemas.events import Event
from schemas.values import ARTIST_COUNT_UNITS


@dataclass(frozen=True)
class ArtistMemoryConfig:
    history_size: int = 64
    """Distinct positive artists a listener's history keeps (the oldest falls out)."""
    row_capacity: int = 200
    """Partners an artist's row keeps after a cut (cut when it reaches twice this)."""
    neighbours_written: int = 100
    """Strongest partners written to Redis per artist (what serving reads)."""
    listener_weight: float = 0.25
    """γ: a pair formed in a history of k distinct artists counts 1/k^γ (0: every pair counts 1)."""


ARTIST_MEMORY_CONFIG = ArtistMemoryConfig()


def pair_weight(history_artists: int, config: ArtistMemoryConfig = ARTIST_MEMORY_CONFIG) -> int:
    """What one pair formed in a history of `history_artists` distinct artists adds to a row's count,
    in `ARTIST_COUNT_UNITS` (at least 1)."""
    return max(1, round(ARTIST_COUNT_UNITS / max(history_artists, 1) ** config.listener_weight))


@dataclass
class ArtistHistory:
    """One listener's distinct positive artists, most recent last."""

    artists: dict[str, None] = field(default_factory=dict)
    config: ArtistMemoryConfig = ARTIST_MEMORY_CONFIG

    def learn_one(self, event: Event, artist: str | None) -> list[str] | None:
        """The partners of a newly entered artist (possibly []), or None when nothing is new."""
        if not artist or event.type not in POSITIVE_TYPES:
            return None
        artists = self.artists
        if artist in artists:
            del artists[artist]
            artists[artist] = None
            return None
        partners = list(artists)
        artists[artist] = None
        if len(artists) > self.config.history_size:
            del artists[next(iter(artists))]
        return partners


@dataclass
class ArtistRow:
    """One artist's listener count and co-occurrence counts with its partners (in `ARTIST_COUNT_UNITS`)."""

    listeners: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    config: ArtistMemoryConfig = ARTIST_MEMORY_CONFIG
    units: int = 0
    """The units of `counts` when the row was snapshotted; 0 in rows from before weighted pairs,
    whose every pair counted one (`in_units` converts them)."""

    def in_units(self, units: int) -> ArtistRow:
        """This row with its counts in `units` per listener (a row from before weighted pairs counted
        each pair as one listener)."""
        have = self.units or 1
        if have == units:
            return ArtistRow(self.listeners, self.counts, self.config, units)
        counts = {p: n * units // have for p, n in self.counts.items()}
        return ArtistRow(self.listeners, counts, self.config, units)

    def learn_one(self, listeners: int, partners: Mapping[str, int]) -> None:
        """Add `listeners` new listeners and `partners[b]` co-occurrences with each partner b."""
        self.listeners += listeners
        counts = self.counts
        for partner, n in partners.items():
            counts[partner] = counts.get(partner, 0) + n
        capacity = self.config.row_capacity
        if len(counts) >= 2 * capacity:
            self.counts = dict(self.top(capacity))

    def top(self, k: int) -> list[tuple[str, int]]:
        """The k strongest partners, ties by name."""
        # heapq.nsmallest by (−count, name) is sorted()[:k]; (−count, name) pairs sort so in C.
        ranked = sorted([(-n, name) for name, n in self.counts.items()])
        return [(name, -n) for n, name in ranked[:max(k, 0)]]
