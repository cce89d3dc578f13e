"""The search index of the live catalog: built when the catalog changes, never per request.

The first search of a process builds it (and loads the embedding model from its wheel, about half a
second); from then on every catalog version the API loads gets a new index in the background, off
the event loop, reusing the previous index's embeddings of tracks whose text did not change. A
search meanwhile uses the previous index, which answers from the catalog version it was built for,
so positions never mix two catalogs. Processes that never search pay nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ranking.search import SearchIndex
from ranking.search.embedding import load_embedder
from serving.catalog import LiveCatalog

log = logging.getLogger(__name__)


class LiveSearchIndex:
    def __init__(self, catalog: LiveCatalog, embeddings: bool = True) -> None:
        self.catalog = catalog
        self.embeddings = embeddings
        self.index: SearchIndex | None = None
        self.built_in_s: float | None = None
        self._building: asyncio.Task[None] | None = None

    async def current(self) -> SearchIndex:
        """The index of the newest catalog view, or while that one is being built, the previous."""
        view = self.catalog.view
        if self.index is not None and self.index.view is view:
            return self.index
        if self._building is None or self._building.done():
            self._building = asyncio.create_task(self._build(view))
        if self.index is None:
            await asyncio.shield(self._building)
        assert self.index is not None
        return self.index

    async def _build(self, view) -> None:
        started = time.perf_counter()
        embedder = await asyncio.to_thread(load_embedder) if self.embeddings else None
        self.index = await asyncio.to_thread(SearchIndex.build, view, embedder, self.index)
        self.built_in_s = time.perf_counter() - started
        log.info("search index built: %d tracks, embeddings %s, in %.2f s", len(view),
                 "on" if self.index.embeddings is not None else "off", self.built_in_s)

    async def keep_fresh(self, interval_s: float) -> None:
        """Once a search has been asked for, rebuild whenever the catalog view changes."""
        while True:
            await asyncio.sleep(interval_s)
            if self.index is not None and self.index.view is not self.catalog.view:
                with contextlib.suppress(Exception):
                    await self.current()
                    if self._building is not None:
                        await asyncio.shield(self._building)
