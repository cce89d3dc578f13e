"""Dedupe over an event-time horizon: each listener's event ids of the last days, exactly.

A player retries a batch it buffered offline hours or days later, with the same `event_id`s. The
per-user step asks `EventDedupe.seen(event)` before it applies anything:

- **duplicate**: the id was accepted before, within the horizon: not applied again;
- **too late**: the event's time is more than `horizon_ms` before the listener's newest accepted
  event (or before the floor a full memory raised, below): the flow can no longer tell whether it is
  a repeat, so it is not applied and goes to the dead-letter topic as `too_late`;
- **new**: accepted and remembered.

**What is kept.** The 64-bit BLAKE2b hash of every accepted id, in event-time buckets of
`horizon_ms / buckets` (one day for the default 7-day horizon with 7 buckets). A bucket is
dropped once all of it is older than `newest - horizon`: every event it could hold would be too late
anyway, so forgetting it can never let a repeat through. Buckets older than the listener's newest
one are sealed into sorted `array('Q')` (8 bytes per id); the newest bucket is a set (about 70
bytes per id) until a newer one opens. One sorted array of every sealed hash answers a lookup with
one binary search (it doubles the sealed bytes).

**Bounded memory.** At most `max_ids` ids per listener (default 20,000, 16 B each once sealed: 320
KB; a listener would have to send an event every 30 s for a week to fill it). Past it the oldest
bucket is dropped early and `floor_ms` rises to its end: events older than the floor are then
`too_late`, never applied twice. If the newest bucket alone holds `max_ids` ids (20,000 events in
one day), further new events of that bucket are refused as `dedupe_full` until a newer bucket
opens. For a typical listener (hundreds of events a week) the memory is a few KB.

**Collision odds.** Ids are compared by 64-bit hash, so a new id could be taken for a duplicate
only if its hash equals one of the ≤ `max_ids` hashes kept for that listener: probability ≤
`max_ids / 2**64` ≈ 1.1e-15 per event at the cap, ≈ 5e-17 for a listener with 1,000 ids. At
10,000 events/s for a year (3.2e11 events) and every listener at the cap, that is ≤ 3.4e-4 false
duplicates expected: fewer than one in 2,900 years. The hash is unkeyed; finding an id whose hash
matches one chosen id is a 2^64 preimage search, so a forger cannot aim a collision at another
event.

>>> dedupe = EventDedupe(DedupeConfig(horizon_ms=7 * DAY_MS))
>>> dedupe.seen("e1", 10 * DAY_MS), dedupe.seen("e1", 10 * DAY_MS)
(<Verdict.NEW: 'new'>, <Verdict.DUPLICATE: 'duplicate'>)
>>> dedupe.seen("e2", 18 * DAY_MS), dedupe.seen("e1", 10 * DAY_MS)  # e1 is now 8 days old
(<Verdict.NEW: 'new'>, <Verdict.TOO_LATE: 'too_late'>)
"""

from __future__ import annotations

import hashlib
import struct
from array import array
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from itertools import chain

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
DEFAULT_HORIZON_MS = 7 * DAY_MS


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"
    FULL = "dedupe_full"


@dataclass(frozen=True)
class DedupeConfig:
    horizon_ms: int = DEFAULT_HORIZON_MS
    """How much event time before the listener's newest accepted event an id is remembered."""
    buckets: int = 7
    """Buckets per horizon: ids expire a bucket at a time (one day for the default horizon)."""
    max_ids: int = 20_000
    """Most ids kept per listener; past it the oldest bucket goes early and `floor_ms` rises."""

    def __post_init__(self) -> None:
        if self.horizon_ms < 1 or self.buckets < 1 or self.max_ids < 1:
            raise ValueError("horizon_ms, buckets and max_ids must be positive")

    @property
    def bucket_ms(self) -> int:
        return max(1, self.horizon_ms // self.buckets)


DEDUPE_CONFIG = DedupeConfig()
NO_TIME = -(2**63)


def event_id_hash(event_id: str) -> int:
    """A stable 64-bit hash of an event id (Python's `hash` differs between processes).

    >>> event_id_hash("e1") == event_id_hash("e1") != event_id_hash("e2")
    True
    """
    return int.from_bytes(_blake2b(event_id.encode(), digest_size=8).digest(), "little")


_blake2b = hashlib.blake2b


def _contains(sealed: array, value: int) -> bool:
    i = bisect_left(sealed, value)
    return i < len(sealed) and sealed[i] == value


_HEADER = struct.Struct("<BqqqI")
_BUCKET = struct.Struct("<qI")
_FORMAT = 1


class EventDedupe:
    """One listener's accepted event ids over the horizon (see the module's rules)."""

    __slots__ = ("_bucket_ms", "_lookup", "_open", "_open_bucket", "_sealed", "config", "floor_ms",
                 "newest_ms", "size")

    def __init__(self, config: DedupeConfig = DEDUPE_CONFIG) -> None:
        self.config = config
        self._bucket_ms = config.bucket_ms
        """`config.bucket_ms`, read on every event."""
        self.newest_ms = NO_TIME
        """Event time of the newest accepted event; `NO_TIME` before the first."""
        self.floor_ms = NO_TIME
        """Raised when a full memory dropped a bucket early: events before it are too late."""
        self._sealed: dict[int, array] = {}
        """bucket → sorted hashes (every bucket but the newest)."""
        self._lookup = array("Q")
        """Every sealed hash, sorted: one binary search answers for all sealed buckets (rebuilt when
        a bucket is sealed or dropped, about once per bucket width)."""
        self._open: set[int] = set()
        self._open_bucket: int | None = None
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def cutoff_ms(self) -> int:
        """Events with a time before this are too late."""
        if self.newest_ms == NO_TIME:
            return self.floor_ms
        return max(self.floor_ms, self.newest_ms - self.config.horizon_ms)

    def check(self, event_hash: int, ts_ms: int) -> Verdict:
        """The verdict for an event, without remembering it."""
        if ts_ms < self.cutoff_ms():
            return Verdict.TOO_LATE
        if event_hash in self._open or _contains(self._lookup, event_hash):
            return Verdict.DUPLICATE
        if (self.size >= self.config.max_ids and not self._sealed and self._open_bucket is not None
                and ts_ms // self._bucket_ms <= self._open_bucket):
            return Verdict.FULL  # nothing older to let go of: keeping the bound means refusing
        return Verdict.NEW

    def add(self, event_hash: int, ts_ms: int) -> None:
        """Remember an accepted event (one `check` answered NEW for)."""
        bucket = ts_ms // self._bucket_ms
        open_bucket = self._open_bucket
        if open_bucket is None:
            open_bucket = self._open_bucket = bucket
        if bucket == open_bucket:
            self._open.add(event_hash)
        elif bucket > open_bucket:
            self._seal()
            self._open_bucket = bucket
            self._open = {event_hash}
        else:
            insort(self._sealed.setdefault(bucket, array("Q")), event_hash)
            insort(self._lookup, event_hash)
        self.size += 1
        if ts_ms > self.newest_ms:
            self.newest_ms = ts_ms
            if self._sealed:  # nothing to expire before a bucket is sealed
                self._expire()
        if self.size > self.config.max_ids:
            while self.size > self.config.max_ids and len(self._buckets()) > 1:
                self._drop_oldest()

    def seen(self, event_id: str, ts_ms: int) -> Verdict:
        """`check` and, for a new event, `add`: the one call the flow makes per event."""
        event_hash = event_id_hash(event_id)
        verdict = self.check(event_hash, ts_ms)
        if verdict is Verdict.NEW:
            self.add(event_hash, ts_ms)
        return verdict

    def _buckets(self) -> list[int]:
        held = list(self._sealed)
        if self._open_bucket is not None:
            held.append(self._open_bucket)
        return sorted(held)

    def _rebuild(self) -> None:
        self._lookup = array("Q", sorted(chain.from_iterable(self._sealed.values())))

    def _seal(self) -> None:
        if self._open_bucket is not None and self._open:
            self._sealed[self._open_bucket] = array("Q", sorted(self._open))
            self._rebuild()
        self._open = set()

    def _expire(self) -> None:
        """Drop every sealed bucket whose whole span is older than `newest - horizon`."""
        bucket_ms, limit = self.config.bucket_ms, self.newest_ms - self.config.horizon_ms
        expired = [b for b in self._sealed if (b + 1) * bucket_ms <= limit]
        for bucket in expired:
            self.size -= len(self._sealed.pop(bucket))
        if expired:
            self._rebuild()

    def _drop_oldest(self) -> None:
        oldest = self._buckets()[0]
        if oldest == self._open_bucket:
            self.size -= len(self._open)
            self._open = set()
        else:
            self.size -= len(self._sealed.pop(oldest))
            self._rebuild()
        self.floor_ms = max(self.floor_ms, (oldest + 1) * self.config.bucket_ms)

    def memory_bytes(self) -> int:
        """About how much memory the ids take (sealed 16 B each with the lookup, the open set ~70 B each)."""
        return 16 * sum(len(s) for s in self._sealed.values()) + 70 * len(self._open)

    def to_bytes(self) -> bytes:
        """`u8 format, i64 newest, i64 floor, i64 bucket_ms, u32 buckets`, then per bucket `i64 index,
        u32 n, n × u64` sorted: the exact state (the open bucket is stored like a sealed one)."""
        rows = dict(self._sealed)
        if self._open_bucket is not None and self._open:
            rows[self._open_bucket] = array("Q", sorted(self._open))
        out = bytearray(_HEADER.pack(_FORMAT, self.newest_ms, self.floor_ms, self.config.bucket_ms,
                                     len(rows)))
        for bucket in sorted(rows):
            ids = rows[bucket]
            out += _BUCKET.pack(bucket, len(ids))
            out += ids.tobytes() if ids.itemsize == 8 else array("Q", ids).tobytes()
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes, config: DedupeConfig = DEDUPE_CONFIG) -> EventDedupe:
        """The state `to_bytes` wrote. Written with another bucket width (the horizon changed), each
        old bucket goes to the new bucket holding its *last* millisecond: ids are kept at least as
        long as before, never dropped early."""
        fmt, newest, floor, old_ms, count = _HEADER.unpack_from(data, 0)
        if fmt != _FORMAT:
            raise ValueError(f"dedupe state format {fmt} is not supported")
        dedupe = cls(config)
        dedupe.newest_ms, dedupe.floor_ms = newest, floor
        new_ms = config.bucket_ms
        pos = _HEADER.size
        rows: dict[int, array] = {}
        for _ in range(count):
            bucket, n = _BUCKET.unpack_from(data, pos)
            pos += _BUCKET.size
            ids = array("Q")
            ids.frombytes(data[pos : pos + 8 * n])
            pos += 8 * n
            if old_ms != new_ms:
                bucket = ((bucket + 1) * old_ms - 1) // new_ms
                if bucket in rows:
                    ids = array("Q", sorted({*rows[bucket], *ids}))
            rows[bucket] = ids
        if rows:
            newest_bucket = max(rows)
            dedupe._open_bucket = newest_bucket
            dedupe._open = set(rows.pop(newest_bucket))
        dedupe._sealed = rows
        dedupe._rebuild()
        dedupe.size = sum(len(r) for r in rows.values()) + len(dedupe._open)
        return dedupe

    @classmethod
    def from_hashes(cls, hashes: Iterable[int], ts_ms: int, config: DedupeConfig = DEDUPE_CONFIG
                    ) -> EventDedupe:
        """A dedupe that remembers `hashes` at event time `ts_ms` (the 24 ids of an old snapshot)."""
        dedupe = cls(config)
        for event_hash in hashes:
            if dedupe.check(event_hash, ts_ms) is Verdict.NEW:
                dedupe.add(event_hash, ts_ms)
        return dedupe

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventDedupe) and self.to_bytes() == other.to_bytes()

    def __repr__(self) -> str:
        return f"EventDedupe(ids={self.size}, newest_ms={self.newest_ms}, cutoff_ms={self.cutoff_ms()})"
