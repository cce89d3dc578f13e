"""The API's garbage collector: what lives as long as a catalog view is frozen out of it.

A full collection walks every tracked object. With a 28k-track catalog, its search index and the
models loaded at start that is a few hundred thousand objects, and the event loop stands still
while it runs; the slowest answers were those that waited behind one (docs/benchmarks.md). Those
objects live until the next catalog view, so once a view (and its search index) is in place they
are frozen (`gc.freeze`): collections, full ones included, then walk only what requests and caches
made since. Frozen objects are still freed by reference counting when the view is dropped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


async def keep_settled(long_lived: Callable[[], tuple[object, ...]], interval_s: float) -> None:
    """Freeze the heap whenever any of `long_lived()` (the catalog view, the search index...) is a
    new object."""
    seen: tuple[int, ...] = ()
    while True:
        current = tuple(id(o) for o in long_lived())
        if current != seen:
            seen = current
            gc.freeze()
            log.debug("heap frozen: %d objects", gc.get_freeze_count())
        await asyncio.sleep(interval_s)
