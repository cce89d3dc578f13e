"""The API's catalog follows Redis through the change stream: a write applies incrementally (rows
kept, new ones appended), and what the stream cannot explain makes it load in whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import orjson
import pytest
import redis.asyncio as aioredis

from flows.redis_sinks import queue_catalog_upsert
from schemas.keys import CATALOG_CHANGES_READ
from schemas.tracks import Track
from serving.catalog import LiveCatalog
from tests.integration.conftest import Env, track

pytestmark = pytest.mark.integration


def write(env: Env, tracks: Sequence[dict]) -> None:
    pipe = env.redis.pipeline(transaction=False)
    queue_catalog_upsert(pipe, env.keys, {t["track_id"]: Track(**t).to_json() for t in tracks})
    pipe.execute()


def catalog_test(env: Env, body: Callable[[LiveCatalog, list], object]) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(env.services.redis_url)
        kinds: list = []
        catalog = LiveCatalog(client, env.keys, on_update=lambda kind, _s, _v: kinds.append(kind))
        try:
            result = body(catalog, kinds)
            if asyncio.iscoroutine(result):
                await result
        finally:
            await client.aclose()
    asyncio.run(run())


def test_a_write_is_applied_incrementally_and_rows_keep_their_positions(env: Env) -> None:
    write(env, [track(f"t{i:03d}", "rock" if i % 2 else "jazz", i / 40) for i in range(40)])

    async def body(catalog: LiveCatalog, kinds: list) -> None:
        assert await catalog.refresh() and kinds == ["full"]
        first = catalog.view
        order = [t.track_id for t in first.index.tracks]
        assert not await catalog.refresh()  # nothing moved
        write(env, [track("t005", "rock", 0.9, popularity=99), track("new-1", "polka", 0.3)])
        assert await catalog.refresh() and kinds == ["full", "delta"]
        view = catalog.view
        assert [t.track_id for t in view.index.tracks] == [*order, "new-1"]
        assert view.index.tracks[view.index.position["t005"]].popularity == 99
        assert (view.generation, view.epoch) == (first.generation + 1, first.epoch)
        assert catalog.version == env.redis.get(env.keys.catalog_version)
        assert len(first) == 40 and first.index.tracks[first.index.position["t005"]].popularity == 50
        # The same tracks again: a change entry, no change to the view.
        write(env, [track("new-1", "polka", 0.3)])
        assert not await catalog.refresh() and catalog.view is view and kinds[-1] == "delta"

    catalog_test(env, body)


def test_what_the_stream_cannot_explain_loads_the_catalog_in_whole(env: Env) -> None:
    write(env, [track(f"t{i:03d}", "rock", i / 20) for i in range(20)])

    async def body(catalog: LiveCatalog, kinds: list) -> None:
        await catalog.refresh()
        # A writer that bumps the version without logging its tracks.
        env.redis.hset(env.keys.catalog_tracks, "quiet", Track(**track("quiet", "pop", 0.5)).to_json())
        env.redis.incr(env.keys.catalog_version)
        assert await catalog.refresh() and kinds[-1] == "full"
        assert "quiet" in catalog.index.position and catalog.view.epoch == 0
        # A deleted track: the rebuild cannot keep the rows, so a new epoch.
        env.redis.hdel(env.keys.catalog_tracks, "t003")
        env.redis.xadd(env.keys.catalog_changes, {"ids": orjson.dumps(["t003"])})
        env.redis.incr(env.keys.catalog_version)
        assert await catalog.refresh() and kinds[-1] == "full"
        assert "t003" not in catalog.index.position and catalog.view.epoch == 1
        # Too far behind: more entries than a reader applies one by one.
        pipe = env.redis.pipeline(transaction=False)
        for i in range(CATALOG_CHANGES_READ + 1):
            queue_catalog_upsert(pipe, env.keys, {f"b{i}": Track(**track(f"b{i}", "pop", 0.5)).to_json()})
        pipe.execute()
        assert await catalog.refresh() and kinds[-1] == "full"
        assert len(catalog.index) == 20 + CATALOG_CHANGES_READ + 1 and catalog.view.epoch == 1
        # And after each rebuild the stream is followed again.
        write(env, [track("after", "pop", 0.2)])
        assert await catalog.refresh() and kinds[-1] == "delta"
        assert catalog.index.tracks[-1].track_id == "after"

    catalog_test(env, body)


def test_a_catalog_written_before_the_change_stream_existed_still_loads(env: Env) -> None:
    env.redis.hset(env.keys.catalog_tracks, mapping={
        f"t{i}": Track(**track(f"t{i}", "rock", 0.5)).to_json() for i in range(5)})
    env.redis.incr(env.keys.catalog_version)

    async def body(catalog: LiveCatalog, kinds: list) -> None:
        assert await catalog.refresh() and len(catalog.index) == 5
        write(env, [track("t9", "rock", 0.1)])
        assert await catalog.refresh() and kinds == ["full", "delta"] and len(catalog.index) == 6

    catalog_test(env, body)
