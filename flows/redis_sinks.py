"""Redis outputs of the flow: profiles and catalog, coalesced per batch and pipelined."""

from __future__ import annotations

from collections.abc import Callable

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from flows.redis_io import connect, with_retries
from flows.track_lookup import TrackLookup
from flows.user_state import ProfileWrite
from schemas.keys import KeyLayout
from schemas.tracks import Track


class _ProfilePartition(StatelessSinkPartition[tuple[str, ProfileWrite]]):
    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._client = connect(url)
        self._keys = keys

    def write_batch(self, items: list[tuple[str, ProfileWrite]]) -> None:
        # One SET per touched user per batch: the newest version wins.
        newest: dict[str, ProfileWrite] = {}
        for user_id, write in items:
            held = newest.get(user_id)
            if held is None or write[0] >= held[0]:
                newest[user_id] = write
        pipe = self._client.pipeline(transaction=False)
        for user_id, (_, blob) in newest.items():
            pipe.set(self._keys.profile(user_id), blob)
        with_retries(pipe.execute, f"profile write of {len(newest)} users")

    def close(self) -> None:
        self._client.close()


class ProfileSink(DynamicSink[tuple[str, ProfileWrite]]):
    """Writes each user's encoded profile to its key: full state, so rewrites are idempotent."""

    def __init__(self, url: str, keys: KeyLayout) -> None:
        self._url = url
        self._keys = keys

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _ProfilePartition:
        return _ProfilePartition(self._url, self._keys)


class _CatalogPartition(StatelessSinkPartition[Track]):
    def __init__(self, url: str, keys: KeyLayout, on_written: Callable[[list[Track]], None]) -> None:
        self._client = connect(url)
        self._keys = keys
        self._on_written = on_written

    def write_batch(self, items: list[Track]) -> None:
        latest = {track.track_id: track for track in items}
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(
            self._keys.catalog_tracks,
            mapping={track_id: track.to_json() for track_id, track in latest.items()},
        )
        pipe.incr(self._keys.catalog_version)
        with_retries(pipe.execute, f"catalog write of {len(latest)} tracks")
        self._on_written(list(latest.values()))

    def close(self) -> None:
        self._client.close()


class CatalogSink(DynamicSink[Track]):
    """Upserts tracks into the catalog hash and bumps the catalog version readers watch."""

    def __init__(self, url: str, keys: KeyLayout, lookup: TrackLookup) -> None:
        self._url = url
        self._keys = keys
        self._lookup = lookup

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _CatalogPartition:
        return _CatalogPartition(self._url, self._keys, self._lookup.remember)
