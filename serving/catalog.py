"""The API's in-memory catalog, rebuilt from Redis whenever the catalog version changes.

The rebuild (parse, matrices, z space, the engagement model's track rows and, for very large
catalogs, the coarse cell index) runs off the event loop; requests keep using the previous view
until the new one is swapped in whole, so an answer never mixes two catalogs."""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis

from ranking.catalog_index import CatalogIndex
from ranking.catalog_view import CatalogView
from schemas.keys import KeyLayout
from schemas.tracks import InvalidTrack, decode_track

log = logging.getLogger(__name__)

SCAN_COUNT = 5_000


def _build_view(values: list[bytes]) -> CatalogView:
    tracks = []
    unreadable = 0
    for value in values:
        try:
            tracks.append(decode_track(value))
        except InvalidTrack:
            unreadable += 1
    if unreadable:
        log.warning("skipped %d unreadable catalog entries", unreadable)
    return CatalogView.build(tracks)


class LiveCatalog:
    def __init__(self, client: aioredis.Redis, keys: KeyLayout) -> None:
        self._client = client
        self._keys = keys
        self.view = CatalogView.from_index(CatalogIndex.build([]))
        self.version: bytes | None = None
        self.loaded_in_s: float | None = None

    @property
    def index(self) -> CatalogIndex:
        return self.view.index

    async def refresh(self) -> bool:
        """Reload if the version in Redis moved; True when the index changed."""
        version = await self._client.get(self._keys.catalog_version)
        if version == self.version:
            return False
        started = time.perf_counter()
        # HSCAN in chunks, not one HGETALL: a 1M-track catalog in one reply blocks Redis for seconds
        # and can exceed the client's timeout. (A write during the scan shows up at the next version.)
        values: list[bytes] = []
        cursor = 0
        while True:
            cursor, chunk = await self._client.hscan(self._keys.catalog_tracks, cursor, count=SCAN_COUNT)
            values.extend(chunk.values())
            if cursor == 0:
                break
        # Parsing and building the matrices is CPU work; keep it off the event loop.
        self.view = await asyncio.to_thread(_build_view, values)
        self.version = version
        self.loaded_in_s = time.perf_counter() - started
        log.info("catalog loaded: %d tracks (version %s) in %.1f s", len(self.index), version,
                 self.loaded_in_s)
        return True

    async def keep_fresh(self, interval_s: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # keep serving the last good catalog
                log.warning("catalog refresh failed: %s", exc)
            await asyncio.sleep(interval_s)
