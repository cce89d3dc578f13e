"""The API's in-memory catalog, kept current from Redis: incrementally from the change stream, in
whole when it cannot be.

**Incremental.** Every catalog write (`flows.redis_sinks.queue_catalog_upsert`) puts the tracks in
the hash, then one entry with their ids in the change stream (`KeyLayout.catalog_changes`), then
bumps the version. A refresh reads the version and the newest entry; when either moved it reads the
entries after the last one it applied, fetches those tracks (HMGET: their current values, so
applying an entry twice is harmless) and swaps in `view.apply(...)`: changed rows rewritten in a
copy, new tracks appended, the previous view untouched.

**In whole** (HSCAN of the hash, parse, build) at start, and when the stream cannot say what
changed: more than `CATALOG_CHANGES_READ` entries behind (so entries may have been trimmed), an
unreadable entry, the version went back (the keys were reset), a version bump without its entry (a
writer that does not log), or a changed id missing from the hash (a delete). The rebuild keeps every
known track at its position when it can (`ordered_like`), so the view's `epoch` only moves when a
track was deleted.

Either way the work runs off the event loop and requests keep the previous view until the new one
is swapped in whole, so an answer never mixes two catalogs. Staleness: a write shows in the view
within `ENCORE_CATALOG_REFRESH_S` plus the time to apply it (docs/benchmarks.md); during a rebuild
the previous view keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import redis.asyncio as aioredis

from ranking.catalog_index import CatalogIndex, ordered_like
from ranking.catalog_view import CatalogView
from schemas.keys import CATALOG_CHANGES_READ, KeyLayout
from schemas.tracks import InvalidTrack, Track, decode_track
from schemas.values import decode_catalog_change

log = logging.getLogger(__name__)

SCAN_COUNT = 5_000
HMGET_CHUNK = 10_000
NO_CHANGE = b"0-0"
"""The stream id before every entry."""

Updated = Callable[[str, float, CatalogView], None]
"""Called after each swap with the kind (`full` or `delta`), the seconds it took and the new view."""


def _decode(values: Iterable[bytes]) -> list[Track]:
    tracks = []
    unreadable = 0
    for value in values:
        try:
            tracks.append(decode_track(value))
        except InvalidTrack:
            unreadable += 1
    if unreadable:
        log.warning("skipped %d unreadable catalog entries", unreadable)
    return tracks


class _Rebuild(Exception):
    """The change stream cannot say what changed: load the catalog in whole."""


class LiveCatalog:
    def __init__(self, client: aioredis.Redis, keys: KeyLayout, on_update: Updated | None = None) -> None:
        self._client = client
        self._keys = keys
        self._on_update = on_update
        self.view = CatalogView.from_index(CatalogIndex.build([]))
        self.version: bytes | None = None
        """The catalog version (Redis) this view has caught up with."""
        self.loaded_in_s: float | None = None
        """Seconds the last whole load took."""
        self.updated_in_s: float | None = None
        """Seconds the last swap (whole or incremental) took."""
        self._loaded = False
        self._last_change = NO_CHANGE
        self._base_version = 0  # the version the last whole load read, and entries applied since:
        self._entries_since_base = 0  # every logged bump has its entry, so the version cannot pass both

    @property
    def index(self) -> CatalogIndex:
        return self.view.index

    async def refresh(self) -> bool:
        """Catch up with Redis; True when the view changed."""
        pipe = self._client.pipeline(transaction=False)
        # The version before the stream: a writer logs before it bumps, so every bump seen here has
        # its entry in the reads that follow.
        pipe.get(self._keys.catalog_version)
        pipe.xrevrange(self._keys.catalog_changes, count=1)
        version, newest = await pipe.execute()
        newest_id = newest[0][0] if newest else NO_CHANGE
        if self._loaded and version == self.version and newest_id == self._last_change:
            return False
        started = time.perf_counter()
        if self._loaded:
            try:
                changed = await self._apply_changes(version)
            except _Rebuild as why:
                log.info("catalog: loading in whole: %s", why)
            else:
                self._done("delta", started)
                return changed
        await self._load_all()
        self._done("full", started)
        return True

    def _done(self, kind: str, started: float) -> None:
        self.updated_in_s = time.perf_counter() - started
        if kind == "full":
            self.loaded_in_s = self.updated_in_s
            log.info("catalog loaded: %d tracks (version %s) in %.1f s", len(self.index), self.version,
                     self.loaded_in_s)
        if self._on_update is not None:
            self._on_update(kind, self.updated_in_s, self.view)

    async def _apply_changes(self, version: bytes | None) -> bool:
        entries = await self._client.xrange(self._keys.catalog_changes, min=f"({self._last_change.decode()}",
                                            max="+", count=CATALOG_CHANGES_READ + 1)
        if len(entries) > CATALOG_CHANGES_READ:
            raise _Rebuild(f"more than {CATALOG_CHANGES_READ} catalog changes behind")
        seen = int(version or 0)
        if seen < self._base_version:
            raise _Rebuild("the catalog version went back")
        if seen - self._base_version > self._entries_since_base + len(entries):
            raise _Rebuild("the catalog version moved without a change entry")
        ids: dict[str, None] = {}
        for _, fields in entries:
            entry = decode_catalog_change(fields)
            if entry is None:
                raise _Rebuild("an unreadable catalog change entry")
            ids.update(dict.fromkeys(entry))
        values = await self._fetch(list(ids))
        if any(value is None for value in values):
            raise _Rebuild("a changed track is no longer in the catalog")
        previous = self.view
        if ids:
            self.view = await asyncio.to_thread(lambda: previous.apply(_decode(values)))
        self.version = version
        if entries:
            self._last_change = entries[-1][0]
            self._entries_since_base += len(entries)
        return self.view is not previous

    async def _fetch(self, ids: Sequence[str]) -> list[bytes | None]:
        values: list[bytes | None] = []
        for start in range(0, len(ids), HMGET_CHUNK):
            chunk = ids[start : start + HMGET_CHUNK]
            values.extend(await self._client.hmget(self._keys.catalog_tracks, chunk))
        return values

    async def _load_all(self) -> None:
        pipe = self._client.pipeline(transaction=False)
        # The stream before the version here: entries after this one then cover every bump after
        # the version read (a writer's entry and bump landing on either side of both reads costs at
        # worst one needless rebuild later).
        pipe.xrevrange(self._keys.catalog_changes, count=1)
        pipe.get(self._keys.catalog_version)
        newest, version = await pipe.execute()
        # HSCAN in chunks, not one HGETALL: a 1M-track catalog in one reply blocks Redis for seconds
        # and can exceed the client's timeout. Each chunk is parsed as it comes, so the raw bytes of
        # the whole hash are never held at once. A write during the scan is in the stream after the
        # entry read above, so the next refresh applies it (again, harmlessly).
        tracks: list[Track] = []
        cursor = 0
        while True:
            cursor, chunk = await self._client.hscan(self._keys.catalog_tracks, cursor, count=SCAN_COUNT)
            tracks.extend(await asyncio.to_thread(_decode, chunk.values()))
            if cursor == 0:
                break
        previous = self.view
        ordered, kept = ordered_like(previous.index, tracks)
        view = await asyncio.to_thread(CatalogView.build, ordered)
        self.view = replace(view, generation=previous.generation + 1,
                            epoch=previous.epoch if kept else previous.epoch + 1)
        self.version = version
        self._loaded = True
        self._last_change = newest[0][0] if newest else NO_CHANGE
        self._base_version = int(version or 0)
        self._entries_since_base = 0

    async def keep_fresh(self, interval_s: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # keep serving the last good catalog
                log.warning("catalog refresh failed: %s", exc)
            await asyncio.sleep(interval_s)
