"""The item change feed: which tracks' aggregate statistics a batch rewrote, for the API.

The API holds every track's rates in memory (`serving/item_stats.py`) and re-reads only the tracks
named here. The entry is queued last in the same pipeline as the writes it names, so a reader that
sees it also sees them (one connection, executed in order; in a cluster the `{items}` keys share
one slot). Trimming is approximate and never below `ITEM_CHANGES_KEPT`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from schemas.keys import ITEM_CHANGES_KEPT, KeyLayout
from schemas.values import ITEM_CHANGES_FIELD, encode_item_changes


def publish_item_changes(pipe: Any, keys: KeyLayout, track_ids: Collection[str]) -> None:
    """Queue one feed entry naming `track_ids` on `pipe` (nothing when there are none)."""
    if track_ids:
        pipe.xadd(keys.item_changes, {ITEM_CHANGES_FIELD: encode_item_changes(list(track_ids))},
                  maxlen=ITEM_CHANGES_KEPT, approximate=True)
