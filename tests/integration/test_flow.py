"""The dataflow on a real broker and a real Redis: events in Kafka change profiles in Redis."""

from __future__ import annotations

import pytest

from schemas.events import EventType
from schemas.topics import DEAD_LETTER_HEADERS
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration


def test_events_from_kafka_update_the_profile_in_redis(env: Env, flow) -> None:
    env.produce(env.topics.tracks, track("rock-1", "rock", 0.9), key="rock-1")
    env.produce(env.topics.tracks, track("jazz-1", "jazz", 0.1), key="jazz-1")
    env.flush()
    wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == 2, 30, "the catalog to hold 2 tracks")

    env.produce(env.topics.events, event("e1", "ana", "rock-1", "like", ts=T0 + 1000), key="ana")
    env.produce(env.topics.events, event("e2", "ana", "rock-1", "complete", ts=T0 + 2000,
                                         position_ms=200_000, duration_ms=200_000), key="ana")
    env.produce(env.topics.events, event("e3", "ana", "jazz-1", "skip", ts=T0 + 3000,
                                         position_ms=5_000, duration_ms=200_000), key="ana")
    env.flush()

    profile = env.wait_for_version("ana", 3)
    assert profile.version == 3
    assert profile.as_of_ms == T0 + 3000
    assert profile.counts[EventType.LIKE] == 1
    assert profile.counts[EventType.COMPLETE] == 1
    assert profile.counts[EventType.SKIP] == 1
    assert profile.genres["rock"] > 0 > profile.genres["jazz"]
    assert profile.taste[1] > 0.85  # energy: pulled to the liked rock track, pushed from jazz
    # Recent tracks are distinct, each with its latest event's time (to the second); the like of
    # rock-1 stays its type through the later complete.
    assert [(r.track_id, r.type, r.ts_ms) for r in profile.recent] == [
        ("rock-1", EventType.LIKE, (T0 + 2000) // 1000 * 1000),
        ("jazz-1", EventType.SKIP, (T0 + 3000) // 1000 * 1000)]
    assert profile.skip_rate == pytest.approx(0.5)


def test_a_bad_event_goes_to_the_dead_letter_topic_while_good_ones_around_it_apply(env: Env, flow) -> None:
    env.produce(env.topics.tracks, track("t1", "pop", 0.6), key="t1")
    env.flush()
    bad = [
        b"not json at all {",
        b'{"event_id": "x", "user_id": "bo", "track_id": "t1", "type": "shout", "ts": 1}',
        b'\xff\xfe\x00 invalid utf-8',
    ]
    env.produce(env.topics.events, event("g1", "bo", "t1", "play", ts=T0 + 10), key="bo")
    env.produce(env.topics.events, bad[0], key="bo")
    env.produce(env.topics.events, event("g2", "bo", "t1", "like", ts=T0 + 20), key="bo")
    env.produce(env.topics.events, bad[1], key="bo")
    env.produce(env.topics.events, bad[2], key="bo")
    env.produce(env.topics.events, event("g3", "bo", "t1", "complete", ts=T0 + 30), key="bo")
    env.flush()

    profile = env.wait_for_version("bo", 3)
    letters = env.dead_letters(expected=3)
    assert sorted(m.value for m in letters) == sorted(bad)
    reasons = {m.value: dict(m.headers)[DEAD_LETTER_HEADERS["reason"]].decode() for m in letters}
    assert reasons[bad[0]].startswith("not valid JSON")
    assert "type" in reasons[bad[1]]
    assert reasons[bad[2]].startswith("not valid JSON")
    for message in letters:
        headers = dict(message.headers)
        assert headers[DEAD_LETTER_HEADERS["topic"]].decode() == env.topics.events
        assert int(headers[DEAD_LETTER_HEADERS["offset"]]) >= 0
    assert profile.version == 3 and profile.as_of_ms == T0 + 30
    assert flow.alive(), "the flow must keep running after bad input"


def test_a_repeated_event_id_is_applied_once(env: Env, flow) -> None:
    env.produce(env.topics.tracks, track("t1", "pop", 0.6), key="t1")
    env.flush()
    for _ in range(3):  # a player retrying the same event
        env.produce(env.topics.events, event("same", "cy", "t1", "like", ts=T0 + 5), key="cy")
    env.produce(env.topics.events, event("other", "cy", "t1", "play", ts=T0 + 6), key="cy")
    env.flush()
    # Wait for the last event itself, then count what was applied before it.
    profile = wait_for(lambda: (p := env.profile("cy")) and p.as_of_ms == T0 + 6 and p, 30, "event 'other'")
    assert profile.version == 2
    assert profile.counts[EventType.LIKE] == 1


def test_a_track_upsert_reaches_the_catalog_and_bad_tracks_are_dead_lettered(env: Env, flow) -> None:
    env.produce(env.topics.tracks, track("t9", "rock", 0.7), key="t9")
    env.produce(env.topics.tracks, {"track_id": "t10", "danceability": 0.5}, key="t10")
    env.flush()
    wait_for(lambda: env.redis.hget(env.keys.catalog_tracks, "t9"), 30, "track t9 in the catalog")
    letters = env.dead_letters(expected=1)
    assert len(letters) == 1
    reason = dict(letters[0].headers)[DEAD_LETTER_HEADERS["reason"]].decode()
    assert reason.startswith("invalid track") and "nine audio features" in reason
    assert env.redis.hget(env.keys.catalog_tracks, "t10") is None


def test_the_flow_records_progress_counters_and_freshness_for_operators(env: Env, flow) -> None:
    env.produce(env.topics.tracks, track("t1", "pop", 0.6), key="t1")
    for i in range(20):
        user = f"user{i % 5}"
        env.produce(env.topics.events, event(f"p{i}", user, "t1", "play", ts=T0 + 100 + i), key=user)
    env.produce(env.topics.events, event("p0", "user0", "t1", "play", ts=T0 + 100), key="user0")  # duplicate
    env.produce(env.topics.events, b"{broken", key="user1")
    env.flush()

    def counters() -> dict[str, int] | None:
        raw = env.redis.hgetall(env.keys.ops_counters)
        values = {k.decode(): int(v) for k, v in raw.items()}
        # The track travels on its own topic: it may be written after every event is applied.
        done = (values.get("events_applied") == 20 and values.get("events_duplicate") == 1
                and values.get("tracks_upserted") == 1)
        return values if done and env.redis.hget(env.keys.ops_dead_letters, "invalid_json") else None

    values = wait_for(counters, 30, "the counters to cover every event")
    assert values["tracks_upserted"] == 1
    assert 1 <= values["profile_writes"] <= 21
    offsets = {m.decode(): int(s) for m, s in env.redis.zrange(env.keys.ops_offsets, 0, -1, withscores=True)}
    event_partitions = {k: v for k, v in offsets.items() if k.startswith(env.topics.events + ":")}
    # Next offset to process, summed over partitions, equals every message produced (22).
    assert sum(event_partitions.values()) == 22
    assert sum(v for k, v in offsets.items() if k.startswith(env.topics.tracks + ":")) == 1
    times = env.redis.hgetall(env.keys.ops_offset_times)
    assert all(int(ts) > 1_700_000_000_000 for ts in times.values())
    freshness = {k.decode(): float(v) for k, v in env.redis.hgetall(env.keys.ops_freshness).items()}
    buckets = sum(v for k, v in freshness.items() if k.startswith("le_"))
    assert buckets == freshness["count"] == values["profile_writes"]
    assert wait_for(lambda: env.redis.get(env.keys.ops_heartbeat), 10, "a heartbeat")
