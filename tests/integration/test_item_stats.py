"""The item statistics the API holds in memory (`serving.item_stats`) on a real Redis: the tables
equal what reading Redis directly gives, a change the flow announces shows after one sync (and not
before), a trimmed feed or a new catalog reloads them whole; and the real flow announces the tracks
whose rates it rewrote."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import redis.asyncio as aioredis

import serving.item_stats as item_stats
from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from flows.item_changes import publish_item_changes
from ranking.item_rates import ItemRates
from schemas.values import decode_item_changes, decode_neighbours, decode_rates, encode_rates
from serving.catalog import LiveCatalog
from serving.item_stats import POPULAR_HELD, TRENDING_READ, LiveItemStats
from serving.recommender import read_signals
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration

TRACKS = read_spotify_csv(DEFAULT_SAMPLE)


def write_catalog(env: Env) -> None:
    env.redis.hset(env.keys.catalog_tracks, mapping={t.track_id: t.to_json() for t in TRACKS})
    env.redis.incr(env.keys.catalog_version)


def write_stats(env: Env, rates: dict[str, tuple[float, float, float]], announce: bool = True) -> None:
    """As the flow's track sink writes them: rates, trending (overall and per genre), popularity."""
    pipe = env.redis.pipeline(transaction=False)
    pipe.hset(env.keys.item_rates, mapping={t: encode_rates(*r) for t, r in rates.items()})
    by_id = {t.track_id: t for t in TRACKS}
    pipe.zadd(env.keys.trending, {t: r[0] * 10 for t, r in rates.items()})
    pipe.zadd(env.keys.stream_popular, {t: r[2] for t, r in rates.items()})
    for t, r in rates.items():
        for genre in by_id[t].genres:
            pipe.zadd(env.keys.trending_in_genre(genre), {t: r[0] * 10})
    if announce:
        publish_item_changes(pipe, env.keys, list(rates))
    pipe.execute()


def random_rates(n: int, seed: int) -> dict[str, tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(TRACKS), n, replace=False).tolist()
    return {TRACKS[i].track_id: (round(float(rng.random()), 4), round(float(rng.random()), 4),
                                 float(rng.integers(1, 900))) for i in picked}


async def opened(env: Env) -> tuple[aioredis.Redis, LiveCatalog, LiveItemStats]:
    client = aioredis.Redis.from_url(env.services.redis_url)
    catalog = LiveCatalog(client, env.keys)
    await catalog.refresh()
    return client, catalog, LiveItemStats(client, env.keys, catalog, refresh_s=0.05)


def direct_table(env: Env, catalog: LiveCatalog) -> np.ndarray:
    raw = env.redis.hgetall(env.keys.item_rates)
    rates = {k.decode(): decode_rates(v) for k, v in raw.items()}
    return ItemRates.from_mapping(catalog.index, rates).table


def test_held_tables_equal_redis_and_a_change_shows_after_one_sync(env: Env) -> None:
    write_catalog(env)
    write_stats(env, random_rates(300, seed=1))

    async def scenario() -> None:
        client, catalog, stats = await opened(env)
        try:
            await stats.sync()
            held = stats.current(catalog.view)
            assert held is not None and stats.full_loads == 1
            assert np.array_equal(held.rates.table, direct_table(env, catalog), equal_nan=True)
            # Trending and popularity as a request used to read them from Redis.
            direct = await read_signals(client, env.keys, None, None)
            assert held.trending_for([]) == direct.trending
            assert held.popular[: len(direct.popular)] == direct.popular
            assert len(held.popular) == min(POPULAR_HELD, 300)
            for genre in catalog.index.genre_names[:5]:
                row = env.redis.zrevrange(env.keys.trending_in_genre(genre), 0, TRENDING_READ - 1,
                                          withscores=True)
                assert held.trending_by_genre[genre] == decode_neighbours(row)

            # The flow rewrites some tracks and announces them: not visible before the next sync.
            changed = random_rates(40, seed=2)
            write_stats(env, changed)
            before = held.rates.table.copy()
            as_of = held.as_of_ms
            assert np.array_equal(stats.current(catalog.view).rates.table, before, equal_nan=True)
            await stats.sync()
            after = stats.current(catalog.view)
            assert after.as_of_ms >= as_of and stats.full_loads == 1  # incremental
            assert np.array_equal(after.rates.table, direct_table(env, catalog), equal_nan=True)
            for track_id, rate in changed.items():
                assert after.rates.table[catalog.index.position[track_id]].tolist() == list(rate)

            # Kept fresh in the background, a change shows within the refresh interval.
            task = asyncio.create_task(stats.keep_fresh())
            try:
                one = next(iter(random_rates(1, seed=9)))
                write_stats(env, {one: (0.123, 0.456, 789.0)})
                position = catalog.index.position[one]
                deadline = asyncio.get_running_loop().time() + 2.0
                while stats.current(catalog.view).rates.table[position].tolist() != [0.123, 0.456, 789.0]:
                    assert asyncio.get_running_loop().time() < deadline, "not shown within 2 s"
                    await asyncio.sleep(0.01)
            finally:
                task.cancel()
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_a_trimmed_feed_or_a_new_catalog_reloads_everything(env: Env, monkeypatch) -> None:
    write_catalog(env)
    write_stats(env, random_rates(50, seed=3))

    async def scenario() -> None:
        client, catalog, stats = await opened(env)
        try:
            await stats.sync()
            assert stats.full_loads == 1
            # A rate written without an announcement is missed until the next full load...
            silent = random_rates(5, seed=4)
            write_stats(env, silent, announce=False)
            await stats.sync()
            assert stats.full_loads == 1
            # ...which a feed trimmed past the last entry read causes.
            monkeypatch.setattr(item_stats, "ITEM_CHANGES_KEPT", 3)
            for _ in range(6):
                env.redis.xadd(env.keys.item_changes, {"ids": b"[]"}, maxlen=3, approximate=False)
            await stats.sync()
            assert stats.full_loads == 2
            held = stats.current(catalog.view)
            assert np.array_equal(held.rates.table, direct_table(env, catalog), equal_nan=True)
            # A new catalog view that keeps every track's row (same epoch): the tables carry over.
            env.redis.incr(env.keys.catalog_version)
            await catalog.refresh()
            assert catalog.view.epoch == held.view.epoch and catalog.view is not held.view
            assert stats.current(catalog.view) is held
            await stats.sync()
            assert stats.full_loads == 2
            # A view whose rows moved (a track deleted: a new epoch): the old tables are not served
            # for it, the next sync reloads.
            env.redis.hdel(env.keys.catalog_tracks, TRACKS[0].track_id)
            env.redis.incr(env.keys.catalog_version)
            await catalog.refresh()
            assert catalog.view.epoch != held.view.epoch
            assert stats.current(catalog.view) is None
            await stats.sync()
            assert stats.full_loads == 3 and stats.current(catalog.view) is not None
            assert np.array_equal(stats.current(catalog.view).rates.table, direct_table(env, catalog),
                                  equal_nan=True)
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_the_flow_announces_every_track_whose_rates_it_wrote(env: Env, flow) -> None:
    tracks = [track(f"loud-{i}", "rock", 0.8 + 0.05 * i) for i in range(3)]
    for t in tracks:
        env.produce(env.topics.tracks, t, key=t["track_id"])
    env.flush()
    wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == 3, 30, "the catalog")
    for i, t in enumerate(tracks):
        e = event(f"e{i}", "ana", t["track_id"], "complete", ts=T0 + i * 60_000,
                  position_ms=200_000, duration_ms=200_000)
        env.produce(env.topics.events, e, key="ana")
    env.flush()
    wait_for(lambda: env.redis.hlen(env.keys.item_rates) == 3 or None, 30, "the rates")
    announced: set[str] = set()
    for _, fields in env.redis.xrange(env.keys.item_changes):
        announced.update(decode_item_changes(fields[b"ids"]))
    assert announced == {t["track_id"] for t in tracks}
