"""Serving's side of the recommendation pipeline: the Redis reads between the pure steps, and a cache.

Per request (`ranking.pipeline` does everything else, in memory):

1. one MGET: the profile and the declared favourites (same hash tag, so one slot in a cluster);
2. one pipeline: the co-listening rows of the recent positives and the artist rows of the liked
   artists (skipped when there are none).

The aggregate item statistics (every track's rates, trending overall and per genre, the stream's
most listened tracks) are held in memory (`serving.item_stats`, bounded-stale, the age shown in
answers). Until they are held for the current catalog view, trending and popularity are read in
the pipeline above and the merged candidates' rates with one HMGET, as before.

The global engagement model (for listeners without their own) changes once per 15 minutes of
event time; it is re-read at most every `GLOBAL_REFRESH_S`.

**Cache without staleness**: a finished answer is cached under a key that holds the listener's
`profile_version` (and the seed, the catalog version and every request parameter), so an event
the flow has applied changes the key and is never hidden; the profile itself is read on every
request. Trending and co-listening move without the listener: `ttl_s` bounds how old those may be.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ranking.candidates import SourceCandidates
from ranking.catalog_index import CatalogIndex
from ranking.catalog_view import CatalogView
from ranking.collaborative import ArtistSpace, byte_positions, scores_at, seed_artists
from ranking.config import RANKING_CONFIG, RankingConfig
from ranking.explore import outcome_stats
from ranking.listener import recent_positives
from ranking.pipeline import Gathered, RankedTrack, RecommendRequest, gather, pick, rank_given, score
from ranking.seeds import SeedFavourites, SeedProfile, seed_of
from ranking.sources import Signals
from ranking.sources.popular import streamed_positions
from ranking.sources.trending import ranked_parts, trending_part
from schemas.keys import NEIGHBOURS_KEPT, KeyLayout
from schemas.profile_codec import ProfileCodecError, UserProfile, decode_profile
from schemas.values import (
    ARTIST_COUNT_UNITS,
    EXPLORE_KEY,
    RankerState,
    decode_neighbours,
    decode_outcomes,
    decode_ranker,
    decode_rates,
    decode_seed,
    is_model_weights,
)
from schemas.values import encode_seed as encode_seed_value
from serving.item_stats import POPULAR_HELD, TRENDING_READ, HeldStats, LiveItemStats
from serving.redis_client import reply_columns, score_pairs, zrevrange_with_scores

GLOBAL_REFRESH_S = 10.0


class ProfileUnreadable(Exception):
    """A stored profile that this version cannot read."""


@dataclass(frozen=True)
class ListenerState:
    profile: UserProfile | None
    seed_raw: bytes | None
    seed: SeedFavourites | None


def parse_seed(raw: bytes | None) -> SeedFavourites | None:
    decoded = decode_seed(raw)
    return SeedFavourites(*decoded) if decoded is not None else None


def encode_seed(favourites: SeedFavourites, at_ms: int) -> bytes:
    return encode_seed_value(favourites.track_ids, favourites.artists, at_ms)


async def read_listener(client: Any, keys: KeyLayout, user_id: str) -> ListenerState:
    raw_profile, raw_seed = await client.mget([keys.profile(user_id), keys.user_seed(user_id)])
    profile = None
    if raw_profile is not None:
        try:
            profile = decode_profile(raw_profile, user_id)
        except ProfileCodecError as exc:
            raise ProfileUnreadable(str(exc)) from None
    return ListenerState(profile, raw_seed, parse_seed(raw_seed))


def _top_genres(profile: UserProfile | None, seed: SeedProfile | None, n: int = 2) -> list[str]:
    scores = dict(seed.genres) if seed is not None else {}
    if profile is not None:
        for name, value in profile.genres.items():
            scores[name] = scores.get(name, 0.0) + value
    return [g for g, v in sorted(scores.items(), key=lambda kv: -kv[1]) if v > 0][:n]


@dataclass(frozen=True)
class ReadSignals:
    neighbours: dict[str, list[tuple[str, float]]]
    trending: list[tuple[str, float]]
    artist_rows: dict[str, Sequence[Any]]
    """Seed artist → its row as Redis replied (`serving.redis_client.reply_columns` reads it)."""
    popular: list[tuple[str, float]]


def popular_read(config: RankingConfig) -> int:
    """How many of the stream's most listened tracks a request uses."""
    return config.quota("popular") + config.popular_cold_quota


async def read_signals(
    client: Any, keys: KeyLayout, profile: UserProfile | None, seed: SeedProfile | None,
    config: RankingConfig = RANKING_CONFIG, artist_seeds: Mapping[str, float] | None = None,
    held: HeldStats | None = None,
) -> ReadSignals:
    """Co-listening rows of the recent positives, trending, and the artist rows of the liked
    artists, in one pipeline (none when there is nothing to read). Trending and popularity come
    from `held` when it has them (`serving.item_stats`), else from Redis in the same pipeline."""
    seeds = [track_id for track_id, _ in recent_positives(profile, config)] if profile else []
    artists = list(artist_seeds or {})
    genres = _top_genres(profile, seed)
    n_popular = popular_read(config)
    trending: list[tuple[str, float]] | None = None
    popular: list[tuple[str, float]] | None = None
    if held is not None:
        trending = held.trending_for(genres)
        popular = held.popular_head(n_popular) if n_popular <= POPULAR_HELD else None
    rows = [keys.track_neighbours(t) for t in seeds] + [keys.artist_neighbours(a) for a in artists]
    stops = [NEIGHBOURS_KEPT - 1] * len(seeds) + [-1] * len(artists)
    if popular is None:
        rows.append(keys.stream_popular)
        stops.append(n_popular - 1)
    if trending is None:
        rows += [keys.trending, *(keys.trending_in_genre(g) for g in genres)]
        stops += [TRENDING_READ - 1] * (1 + len(genres))
    replies: list[Any] = []
    if rows:
        pipe = client.pipeline(transaction=False)
        for key, stop in zip(rows, stops, strict=True):
            zrevrange_with_scores(pipe, key, stop)
        replies = await pipe.execute()
    neighbours = {track_id: decode_neighbours(score_pairs(row))
                  for track_id, row in zip(seeds, replies, strict=False) if row}
    # Artist rows stay raw: their members are looked up as bytes (`ranking.collaborative.ArtistSpace`).
    artist_rows = {artist: row for artist, row in zip(artists, replies[len(seeds):], strict=False) if row}
    rest = [score_pairs(row) for row in replies[len(seeds) + len(artists):]]
    if popular is None:
        popular, rest = decode_neighbours(rest[0]), rest[1:]
    if trending is None:
        trending = []
        for row in rest:
            trending.extend(decode_neighbours(row))
    return ReadSignals(neighbours, trending, artist_rows, popular)


class RankerCache:
    """The flow's learned ranker, re-read at most every `refresh_s` (it moves a little per batch)."""

    def __init__(self, refresh_s: float = 5.0) -> None:
        self.refresh_s = refresh_s
        self.state: RankerState | None = None
        self._checked = -1e9

    async def get(self, client: Any, keys: KeyLayout) -> RankerState | None:
        now = time.monotonic()
        if now - self._checked >= self.refresh_s:
            self._checked = now
            self.state = decode_ranker(await client.get(keys.ranker)) or self.state
        return self.state


class ArtistListenersCache:
    """Listeners per artist (the artist memory's cosine norms), re-read at most every `refresh_s`.

    One HGETALL of a hash with one field per artist that entered any history; the staleness is at
    most `refresh_s` (the rows themselves are read per request). `space` keeps them as an array
    aligned to a catalog view's artists, rebuilt only when the listeners or the view change."""

    def __init__(self, refresh_s: float = 2.0) -> None:
        self.refresh_s = refresh_s
        self.listeners: dict[bytes, float] = {}
        """UTF-8 artist name → listeners."""
        self._checked = -1e9
        self._space: tuple[CatalogIndex, dict[bytes, float], ArtistSpace] | None = None
        self._names: tuple[CatalogIndex, dict[bytes, int]] | None = None

    async def get(self, client: Any, keys: KeyLayout) -> dict[bytes, float]:
        now = time.monotonic()
        if now - self._checked >= self.refresh_s:
            self._checked = now
            raw = await client.hgetall(keys.artist_listeners)
            listeners = {k: float(v) for k, v in raw.items()}
            if listeners != self.listeners:  # unchanged: the same object, so `space` is kept
                self.listeners = listeners
        return self.listeners

    def space(self, index: CatalogIndex) -> ArtistSpace:
        """The listeners read last, over `index`'s artists (their positions), then the others."""
        cached = self._space
        if cached is not None and cached[0] is index and cached[1] is self.listeners:
            return cached[2]
        # The entries hold their index, so an id() reused by a later index cannot match.
        if self._names is None or self._names[0] is not index:
            self._names = (index, byte_positions(index.artist_names))
        space = ArtistSpace.build(index.artist_names, self.listeners, self._names[1])
        self._space = (index, self.listeners, space)
        return space


Rates = dict[str, tuple[float, float, float]]


def parse_rates(track_ids: Sequence[str], values: Sequence[bytes | None]) -> Rates:
    out: Rates = {}
    for track_id, raw in zip(track_ids, values, strict=True):
        rates = decode_rates(raw)
        if rates is not None:
            out[track_id] = rates
    return out


async def read_rates(client: Any, keys: KeyLayout, track_ids: Sequence[str]) -> Rates:
    if not track_ids:
        return {}
    return parse_rates(track_ids, await client.hmget(keys.item_rates, list(track_ids)))


class ExploreStatsCache:
    """The exploration arms' outcomes over all listeners (the flow's `_explore` counts), re-read at
    most every `refresh_s`: the bandit learns at that pace, and a request costs no extra read."""

    def __init__(self, refresh_s: float = 2.0) -> None:
        self.refresh_s = refresh_s
        self.stats: dict[str, tuple[float, float]] = {}
        self._checked = -1e9

    async def get(self, client: Any, keys: KeyLayout) -> dict[str, tuple[float, float]]:
        now = time.monotonic()
        if now - self._checked >= self.refresh_s:
            self._checked = now
            raw = await client.hgetall(keys.experiment_outcomes(EXPLORE_KEY))
            self.stats = outcome_stats(decode_outcomes(raw))
        return self.stats


class GlobalModelCache:
    """The newest published global engagement model, re-read at most every `refresh_s`."""

    def __init__(self, refresh_s: float = GLOBAL_REFRESH_S) -> None:
        self.refresh_s = refresh_s
        self.weights: np.ndarray | None = None
        self.period: int | None = None
        self._checked = -1e9

    async def get(self, client: Any, keys: KeyLayout) -> np.ndarray | None:
        now = time.monotonic()
        if now - self._checked < self.refresh_s:
            return self.weights
        self._checked = now
        latest = await client.get(keys.global_model_latest)
        if latest is None:
            return self.weights
        period = int(latest)
        if period != self.period:
            raw = await client.get(keys.global_model(period))
            if is_model_weights(raw):
                self.weights = np.frombuffer(raw, dtype="<f4").copy()
                self.period = period
        return self.weights


class ResponseCache:
    """A small LRU of finished answers; entries older than `ttl_s` are not served."""

    def __init__(self, size: int = 4096, ttl_s: float = 5.0) -> None:
        self.size = size
        self.ttl_s = ttl_s
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        if self.size <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def seed_digest(raw: bytes | None) -> bytes:
    return hashlib.blake2b(raw, digest_size=8).digest() if raw else b""


NOT_KEYED = frozenset({"now_ms"})
"""`RecommendRequest` fields left out of the answer cache key: the wall clock differs on every request
(`ResponseCache.ttl_s` bounds how old a cached answer may be). Every other field is in the key."""

_config_digests: dict[int, tuple[RankingConfig, str]] = {}


def config_digest(config: RankingConfig) -> str:
    """`config.digest`, computed once per config object (it takes tens of µs). An entry holds its
    config, so that id() cannot be reused by another config while the entry lives."""
    entry = _config_digests.get(id(config))
    if entry is None:
        if len(_config_digests) >= 64:
            _config_digests.clear()
        entry = _config_digests[id(config)] = (config, config.digest)
    return entry[1]


def request_key(request: RecommendRequest) -> tuple[Hashable, ...]:
    """The request's part of the answer cache key: every field (a field added later is keyed without
    being listed) but `NOT_KEYED`, in field order, `config` by its digest."""
    return tuple(config_digest(request.config) if f.name == "config" else getattr(request, f.name)
                 for f in fields(request) if f.name not in NOT_KEYED)


@dataclass(frozen=True)
class Answer:
    items: list[RankedTrack]
    cold_start: bool
    seeded: bool
    target: str | None
    stats_as_of_ms: int
    """Wall clock up to which the item statistics it used were read (`serving.item_stats`)."""


class Recommender:
    """The pipeline with its reads; one per API process."""

    def __init__(self, keys: KeyLayout, cache: ResponseCache, global_model: GlobalModelCache,
                 item_stats: LiveItemStats | None = None) -> None:
        self.keys = keys
        self.cache = cache
        self.global_model = global_model
        self.item_stats = item_stats
        """Rates, trending and popularity held in memory; None: read from Redis per request."""
        self.artist_listeners = ArtistListenersCache()
        self.explore_stats = ExploreStatsCache()
        self.ranker = RankerCache()
        self._seeds = ResponseCache(size=1024, ttl_s=math.inf)
        """Resolved seeds by (catalog view, seed digest); entries hold their view, because an id()
        can be reused by a later view whose positions differ."""

    async def signals(
        self, client: Any, view: CatalogView, profile: UserProfile | None, seed: SeedProfile | None,
        request: RecommendRequest,
    ) -> tuple[Signals, int]:
        """Everything besides the profile, and the wall clock up to which its item statistics were
        read: one pipeline, plus the cached models. Without held statistics for `view` the
        candidates' rates are read later (`read_rates`)."""
        config = request.config
        artist_seeds = seed_artists(profile, view.index, config)
        held = self.item_stats.current(view) if self.item_stats is not None else None
        read = await read_signals(client, self.keys, profile, seed, config, artist_seeds, held)
        if held is not None:
            for genre in _top_genres(profile, seed):
                if genre not in held.trending_by_genre:
                    self.item_stats.want_genre(genre)  # type: ignore[union-attr]
        global_weights = await self.global_model.get(client, self.keys)
        scores: Mapping[str, float] = {}
        via: Mapping[str, str] = {}
        if read.artist_rows:
            await self.artist_listeners.get(client, self.keys)
            index = view.index
            space = self.artist_listeners.space(index)
            rows = {}
            for artist, reply in read.artist_rows.items():
                members, values = reply_columns(reply)
                rows[artist] = (space.positions(members), values)
            found = scores_at(space, artist_seeds, rows, index.artist_names,
                              config.collaborative_normalise_rows, config.collaborative_idf,
                              config.collaborative_popularity, config.collaborative_shrink,
                              index.artist_position, 1.0 / ARTIST_COUNT_UNITS)
            scores, via = found.score_view(), found.via_view()
        ranker = await self.ranker.get(client, self.keys)
        explore = await self.explore_stats.get(client, self.keys) if config.explore_share > 0 else {}
        trending_ranked: SourceCandidates | None = None
        popular_positions: list[tuple[int, float]] | None = None
        if held is not None:
            # Lists that came from the held tables (the same objects until the next sync): their
            # catalog positions, ranked, once per sync instead of once per request.
            index, genres = view.index, tuple(_top_genres(profile, seed))
            if read.trending and read.trending is held.trending_for(genres):
                # Per list (overall, each genre), not per genre pair: listeners share lists.
                parts = [held.derived(("trending", None), index, lambda: trending_part(index, held.trending))]
                for genre in genres:
                    parts.append(held.derived(("trending", genre), index, lambda g=genre: trending_part(
                        index, held.trending_by_genre[g])))
                trending_ranked = ranked_parts(parts)
            n_popular = popular_read(config)
            if read.popular and n_popular <= POPULAR_HELD and read.popular is held.popular_head(n_popular):
                popular_positions = held.derived(("popular", n_popular), index,
                                                 lambda: streamed_positions(index, read.popular))
        signals = Signals(neighbours=read.neighbours, trending=read.trending, global_weights=global_weights,
                          artist_scores=scores, artist_via=via, ranker=ranker, stream_popular=read.popular,
                          explore_stats=explore, item_rates=held.rates if held is not None else None,
                          trending_ranked=trending_ranked, stream_popular_positions=popular_positions)
        return signals, held.as_of_ms if held is not None else int(time.time() * 1000)

    def seed_profile(self, view: CatalogView, state: ListenerState) -> SeedProfile | None:
        if state.seed is None:
            return None
        key = (id(view), seed_digest(state.seed_raw))
        cached = self._seeds.get(key)
        if cached is not None and cached[0] is view:
            return cached[1]
        seed = seed_of(view, state.seed)
        self._seeds.put(key, (view, seed))
        return seed

    async def recommend(
        self, client: Any, view: CatalogView, catalog_version: bytes | None, state: ListenerState,
        request: RecommendRequest,
    ) -> Answer:
        profile = state.profile
        key = ("recs", profile.user_id if profile else None, profile.version if profile else -1,
               seed_digest(state.seed_raw), id(view), catalog_version, *request_key(request))
        if profile is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        seed = self.seed_profile(view, state)
        signals, stats_as_of_ms = await self.signals(client, view, profile, seed, request)
        gathered: Gathered = gather(view, profile, seed, signals, request)
        if signals.item_rates is None:
            ids = [view.index.tracks[c.position].track_id for c in gathered.candidates]
            signals = replace(signals, rates=await read_rates(client, self.keys, ids))
        scored = score(view, profile, seed, gathered, signals, request)
        items = pick(view, profile, scored, request)
        target = scored.target.name if scored.target is not None else None
        answer = Answer(items, gathered.cold_start, seed is not None, target, stats_as_of_ms)
        if profile is not None:
            self.cache.put(key, answer)
        return answer

    async def rank(
        self, client: Any, view: CatalogView, state: ListenerState, track_ids: Sequence[str],
        request: RecommendRequest,
    ) -> tuple[list[RankedTrack], list[str], int]:
        """`rank_given`'s answer, and the wall clock up to which its item statistics were read."""
        seed = self.seed_profile(view, state)
        signals, stats_as_of_ms = await self.signals(client, view, state.profile, seed, request)
        if signals.item_rates is None:
            known = [t for t in dict.fromkeys(track_ids) if t in view.index.position]
            signals = replace(signals, rates=await read_rates(client, self.keys, known))
        return (*rank_given(view, state.profile, seed, track_ids, signals, request), stats_as_of_ms)
