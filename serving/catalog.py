"""The API's in-memory catalog, rebuilt from Redis whenever the catalog version changes."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from online_models.catalog_index import CatalogIndex
from schemas.keys import KeyLayout
from schemas.tracks import InvalidTrack, decode_track

log = logging.getLogger(__name__)


class LiveCatalog:
    def __init__(self, client: aioredis.Redis, keys: KeyLayout) -> None:
        self._client = client
        self._keys = keys
        self.index = CatalogIndex.build([])
        self.version: bytes | None = None

    async def refresh(self) -> bool:
        """Reload if the version in Redis moved; True when the index changed."""
        version = await self._client.get(self._keys.catalog_version)
        if version == self.version:
            return False
        raw = await self._client.hgetall(self._keys.catalog_tracks)
        tracks = []
        for value in raw.values():
            try:
                tracks.append(decode_track(value))
            except InvalidTrack:
                log.warning("skipping an unreadable catalog entry")
        # Building the matrices is CPU work; keep it off the event loop.
        self.index = await asyncio.to_thread(CatalogIndex.build, tracks)
        self.version = version
        log.info("catalog loaded: %d tracks (version %s)", len(self.index), version)
        return True

    async def keep_fresh(self, interval_s: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # keep serving the last good catalog
                log.warning("catalog refresh failed: %s", exc)
            await asyncio.sleep(interval_s)
