"""Redis outputs of the flow: profiles and catalog, coalesced per batch and pipelined.

Each batch is one pipeline: the profile (or catalog) writes, the partitions' progress, the
counters and the freshness histogram, so what operators see moves with what readers see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from redis.client import Pipeline

from flows.batch_log import BatchSummary
from flows.decode import SourcedTrack
from flows.progress import Progress
from flows.redis_io import connect, pipelined
from flows.track_lookup import TrackLookup
from flows.user_state import ProfileWrite
from schemas.keys import CATALOG_CHANGES_KEPT, KeyLayout, freshness_bucket
from schemas.tracks import Track
from schemas.values import encode_catalog_change


class _ProfilePartition(StatelessSinkPartition[tuple[str, ProfileWrite]]):
    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._client = connect(url)
        self._keys = keys
        self._summary = BatchSummary()

    def write_batch(self, items: list[tuple[str, ProfileWrite]]) -> None:
        # One SET per touched user per batch: a user's writes come in the step's order, so the last
        # one wins. A forget deletes the user's keys first; a profile started after it in the same
        # batch is then written again.
        newest: dict[str, ProfileWrite] = {}
        forgotten: set[str] = set()
        progress = Progress()
        counters = dict.fromkeys(("events_applied", "events_duplicate", "events_held", "events_released",
                                  "events_forgotten", "users_forgotten"), 0)
        for user_id, write in items:
            if write.position is not None:
                progress.note(write.position)
            counters["events_applied"] += write.applied
            counters["events_duplicate"] += write.duplicates
            counters["events_held"] += write.held
            counters["events_released"] += len(write.released)
            counters["events_forgotten"] += write.forgotten
            if write.forget:
                counters["users_forgotten"] += 1
                forgotten.add(user_id)
                newest.pop(user_id, None)
            if write.blob is not None:
                newest[user_id] = write
        keys = self._keys
        counters["profile_writes"] = len(newest)

        def fill(pipe) -> None:
            for user_id in forgotten:
                pipe.delete(keys.profile(user_id), keys.user_seed(user_id))
            for user_id, write in newest.items():
                pipe.set(keys.profile(user_id), write.blob)
            progress.record(pipe, keys)
            for name, count in counters.items():
                if count:
                    pipe.hincrby(keys.ops_counters, name, count)
            self._record_freshness(pipe, [w for w in newest.values() if w.position is not None])

        started = time.perf_counter()
        pipelined(self._client, fill, f"profile write of {len(newest)} users")
        now_ms = time.time() * 1000
        self._summary.note(
            events=len(items), applied=counters["events_applied"], duplicates=counters["events_duplicate"],
            profile_writes=len(newest),
            partitions={f"{p[0]}:{p[1]}": pos.offset for p, pos in progress.latest.items()},
            write_ms=(time.perf_counter() - started) * 1000,
            max_age_ms=max((now_ms - w.position.broker_ts_ms for w in newest.values()
                            if w.position is not None), default=0.0))

    def _record_freshness(self, pipe: Pipeline, writes: Collection[ProfileWrite]) -> None:
        """Produce (broker timestamp) → profile written, one sample per written profile."""
        if not writes:
            return
        now_ms = time.time() * 1000
        buckets: dict[str, int] = {}
        total = 0.0
        for write in writes:
            assert write.position is not None
            age = max(0.0, now_ms - write.position.broker_ts_ms)
            total += age
            bucket = freshness_bucket(age)
            buckets[bucket] = buckets.get(bucket, 0) + 1
        for bucket, count in buckets.items():
            pipe.hincrby(self._keys.ops_freshness, bucket, count)
        pipe.hincrbyfloat(self._keys.ops_freshness, "sum_ms", round(total, 3))
        pipe.hincrby(self._keys.ops_freshness, "count", len(writes))

    def close(self) -> None:
        self._summary.flush()
        self._client.close()


class ProfileSink(DynamicSink[tuple[str, ProfileWrite]]):
    """Writes each user's encoded profile to its key: full state, so rewrites are idempotent."""

    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._url = url
        self._keys = keys

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProfilePartition:
        return _ProfilePartition(self._url, self._keys)


class _CatalogPartition(StatelessSinkPartition[SourcedTrack]):
    def __init__(self, url: str, keys: KeyLayout, on_written: Callable[[list[Track]], None]) -> None:
        self._client = connect(url)
        self._keys = keys
        self._on_written = on_written

    def write_batch(self, items: list[SourcedTrack]) -> None:
        progress = Progress()
        latest: dict[str, Track] = {}
        for track, position in items:
            latest[track.track_id] = track
            progress.note(position)
        mapping = {track_id: track.to_json() for track_id, track in latest.items()}

        def fill(pipe) -> None:
            queue_catalog_upsert(pipe, self._keys, mapping)
            progress.record(pipe, self._keys)
            pipe.hincrby(self._keys.ops_counters, "tracks_upserted", len(latest))

        pipelined(self._client, fill, f"catalog write of {len(latest)} tracks")
        self._on_written(list(latest.values()))

    def close(self) -> None:
        self._client.close()


def queue_catalog_upsert(pipe: Pipeline, keys: KeyLayout, mapping: Mapping[str | bytes, bytes]) -> None:
    """Queue one catalog write: the tracks, their change entry, the version bump, in that order.

    The order is the readers' contract (`serving/catalog.py`): an entry's tracks are in the hash
    before the entry, and the entry is in the stream before its bump, so a reader that sees a
    version also sees every entry behind it (all three keys share the `{catalog}` slot)."""
    pipe.hset(keys.catalog_tracks, mapping=dict(mapping))
    pipe.xadd(keys.catalog_changes, encode_catalog_change(
        k.decode() if isinstance(k, bytes) else k for k in mapping), maxlen=CATALOG_CHANGES_KEPT,
        approximate=True)
    pipe.incr(keys.catalog_version)


class CatalogSink(DynamicSink[SourcedTrack]):
    """Upserts tracks into the catalog hash, logs their ids in the change stream and bumps the
    catalog version readers watch."""

    def __init__(self, url: str, keys: KeyLayout, lookup: TrackLookup) -> None:
        self._url = url
        self._keys = keys
        self._lookup = lookup

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CatalogPartition:
        return _CatalogPartition(self._url, self._keys, self._lookup.remember)
