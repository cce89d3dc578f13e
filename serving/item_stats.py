"""The aggregate item statistics the API holds in memory, kept current from the flow's change feed.

Per catalog view: every track's rates (`ranking.item_rates.ItemRates`, aligned to the view's rows),
the top `TRENDING_READ` of the trending sets (overall and per genre) and the top `POPULAR_HELD` of
the stream's popularity set. `LiveItemStats.keep_fresh` runs `sync` every `refresh_s`:

- **rates**: the change feed (`KeyLayout.item_changes`, written by the flow after the writes it
  names) says which tracks the flow rewrote since the last entry read; only those are re-read (one
  HMGET). The first sync, a new catalog view, or a feed trimmed past the last entry read, reload
  the whole rates hash (HSCAN, parsed off the event loop). A view that grew at its end keeps its
  rows and reads the new tracks'.
- **trending and popularity**: the top lists are re-read whole on each sync (a few thousand
  entries, one pipeline), as requests used to read them, so their order and ties are Redis's.

**Staleness.** `as_of_ms` is the wall clock just before a sync's reads: everything the flow wrote
before it is in the tables. While syncs succeed the tables lag the flow by at most `refresh_s` plus
one sync; a failed sync keeps the last tables and their older `as_of_ms`. Answers show it
(`stats_as_of`). The listener's own profile is never held here: it is read on
every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ranking.catalog_index import CatalogIndex
from ranking.catalog_view import CatalogView
from ranking.item_rates import ItemRates, Rate
from schemas.keys import ITEM_CHANGES_KEPT, KeyLayout
from schemas.values import ITEM_CHANGES_FIELD, decode_item_changes, decode_neighbours, decode_rates
from serving.catalog import LiveCatalog
from serving.redis_client import score_pairs, zrevrange_with_scores

log = logging.getLogger(__name__)
T = TypeVar("T")

TRENDING_READ = 100
"""Trending tracks read per sorted set (overall, and per genre: a request uses its listener's two
top genres' lists)."""
POPULAR_HELD = 1_000
"""The stream's most listened tracks held; a request takes the first `quota("popular") +
popular_cold_quota` of them (a config asking for more reads Redis itself)."""
REFRESH_S = 1.0
MEMO_KEPT = 4_096
"""Derived lists kept per sync (one per genre pair asked for, two per catalog index)."""
SCAN_COUNT = 5_000
FEED_READ = 10_000
"""Feed entries read per sync at most (the rest on the next)."""


@dataclass(frozen=True)
class HeldStats:
    """What one sync left for requests: a catalog view's rates, trending and popularity."""

    view: CatalogView
    rates: ItemRates
    """Updated in place by later syncs of the same view (values only move forward)."""
    trending: list[tuple[str, float]]
    trending_by_genre: Mapping[str, list[tuple[str, float]]]
    popular: list[tuple[str, float]]
    as_of_ms: int
    _memo: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)
    """What requests derive from these lists (the same for every request until the next sync)."""

    def trending_for(self, genres: Sequence[str]) -> list[tuple[str, float]] | None:
        """Trending overall then in each genre, as `serving.recommender.read_signals` reads them;
        None when a genre is not held (the caller reads Redis; later syncs hold it). One list per
        genres until the next sync: callers do not modify it."""
        if any(g not in self.trending_by_genre for g in genres):
            return None
        key = ("trending", tuple(genres))
        out = self._memo.get(key)
        if out is None:
            out = list(self.trending)
            for genre in genres:
                out.extend(self.trending_by_genre[genre])
            self._remember(key, out)
        return out

    def popular_head(self, n: int) -> list[tuple[str, float]]:
        """The n most listened (one list per n until the next sync)."""
        key = ("popular", n)
        out = self._memo.get(key)
        if out is None:
            out = self.popular[:n]
            self._remember(key, out)
        return out

    def derived(self, key: Hashable, index: CatalogIndex, compute: Callable[[], T]) -> T:
        """`compute()` once per key and catalog index until the next sync."""
        entry = self._memo.get(("derived", key))
        if entry is None or entry[0] is not index:
            entry = (index, compute())
            self._remember(("derived", key), entry)
        return entry[1]

    def _remember(self, key: Hashable, value: Any) -> None:
        if len(self._memo) >= MEMO_KEPT:
            self._memo.clear()
        self._memo[key] = value


def _stream_id(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq or 0)


def _parse_rates(fields: Mapping[bytes, bytes]) -> dict[str, Rate]:
    out: dict[str, Rate] = {}
    for track_id, raw in fields.items():
        rate = decode_rates(raw)
        if rate is not None:
            out[track_id.decode()] = rate
    return out


class LiveItemStats:
    def __init__(self, client: Any, keys: KeyLayout, catalog: LiveCatalog,
                 refresh_s: float = REFRESH_S) -> None:
        self._client = client
        self._keys = keys
        self._catalog = catalog
        self.refresh_s = refresh_s
        self.held: HeldStats | None = None
        self._last_id: bytes = b"0-0"
        self._wanted_genres: set[str] = set()
        self.full_loads = 0

    def current(self, view: CatalogView) -> HeldStats | None:
        """The held statistics of `view`, or None (not synced yet for it: the caller reads Redis)."""
        held = self.held
        if held is None or not _same_rows(held.view, view) or len(held.rates) != len(view):
            return None
        return held

    def want_genre(self, genre: str) -> None:
        """A request asked for a genre's trending list that is not held: hold it from the next sync."""
        self._wanted_genres.add(genre)

    async def sync(self) -> None:
        """One refresh (see the module's docstring)."""
        as_of_ms = int(time.time() * 1000)
        view = self._catalog.view
        held = self.held
        genres = sorted({*view.index.genre_names, *self._wanted_genres})
        keys, client = self._keys, self._client
        pipe = client.pipeline(transaction=False)
        pipe.xlen(keys.item_changes)
        pipe.xrange(keys.item_changes, "-", "+", count=1)
        pipe.xrange(keys.item_changes, b"(" + self._last_id, "+", count=FEED_READ)
        pipe.xrevrange(keys.item_changes, "+", "-", count=1)
        zrevrange_with_scores(pipe, keys.trending, TRENDING_READ - 1)
        for genre in genres:
            zrevrange_with_scores(pipe, keys.trending_in_genre(genre), TRENDING_READ - 1)
        zrevrange_with_scores(pipe, keys.stream_popular, POPULAR_HELD - 1)
        length, first, entries, newest, *lists = await pipe.execute()
        trending, *by_genre, popular = [score_pairs(raw) for raw in lists]
        # Trimming never goes below ITEM_CHANGES_KEPT: a shorter feed lost nothing.
        trimmed = (length >= ITEM_CHANGES_KEPT and bool(first)
                   and _stream_id(first[0][0]) > _stream_id(self._last_id))
        if held is None or not _same_rows(held.view, view) or trimmed or len(held.rates) > len(view):
            # Read the feed's newest id first: writes during the scan are named by later entries.
            rates = await self._load_all(view)
            self._last_id = newest[0][0] if newest else b"0-0"
        else:
            rates = held.rates.extended(len(view))
            changed: set[str] = set()
            if len(rates) > len(held.rates):
                changed.update(t.track_id for t in view.index.tracks[len(held.rates):])
            for entry_id, fields in entries:
                changed.update(decode_item_changes(fields.get(ITEM_CHANGES_FIELD.encode())))
                self._last_id = entry_id
            await self._apply(view, rates, changed)
        self.held = HeldStats(
            view, rates, decode_neighbours(trending),
            {g: decode_neighbours(row) for g, row in zip(genres, by_genre, strict=True)},
            decode_neighbours(popular), as_of_ms)

    async def _load_all(self, view: CatalogView) -> ItemRates:
        fields: dict[bytes, bytes] = {}
        cursor = 0
        while True:
            cursor, chunk = await self._client.hscan(self._keys.item_rates, cursor, count=SCAN_COUNT)
            fields.update(chunk)
            if cursor == 0:
                break
        self.full_loads += 1
        return await asyncio.to_thread(lambda: ItemRates.from_mapping(view.index, _parse_rates(fields)))

    async def _apply(self, view: CatalogView, rates: ItemRates, changed: set[str]) -> None:
        position = view.index.position
        known = [t for t in changed if t in position]
        if not known:
            return
        values = await self._client.hmget(self._keys.item_rates, known)
        rates.set([position[t] for t in known], [decode_rates(raw) for raw in values])

    async def keep_fresh(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception as exc:  # keep serving the last tables; their as_of shows their age
                log.warning("item statistics sync failed: %s", exc)
            await asyncio.sleep(self.refresh_s)


def _same_rows(held: CatalogView, view: CatalogView) -> bool:
    """Rates held for `held` hold for `view` (extended by any rows it appended): the same view, or an
    incremental successor of one epoch, whose shared tracks keep their rows (`CatalogView.apply`)."""
    return held is view or held.epoch == view.epoch
