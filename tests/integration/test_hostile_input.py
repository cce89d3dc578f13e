"""Hostile input on the real flow: every bad message is dead-lettered with its reason (or handled by
a documented rule), the good events around it are applied, and the flow never stops."""

from __future__ import annotations

import time

import orjson
import pytest

from schemas.topics import DEAD_LETTER_HEADERS
from tests.integration.conftest import T0, Env, event, track, wait_for

pytestmark = pytest.mark.integration


def _now_ms() -> int:
    return int(time.time() * 1000)


def _hostile_messages() -> dict[bytes, tuple[str, str]]:
    """Raw message → (expected reason code, a phrase the reason must contain)."""
    ok = event("x", "mal", "t1", "play")
    return {
        b"\x00\x01 not json": ("invalid_json", "not valid JSON"),
        b'{"event_id": "x", "user_id": "mal", "track_id": "t1", "type": "play", "ts": "\xff\xfe"}':
            ("invalid_json", "not valid JSON"),
        orjson.dumps({**ok, "pad": "a" * 70_000}): ("too_large", "exceeds"),
        b"[" * 5_000 + b"]" * 5_000: ("invalid_json", "not valid JSON"),
        b'{"event_id": "x", "user_id": "mal", "track_id": "t1", "type": "play", "ts": NaN}':
            ("invalid_json", "not valid JSON"),
        b'{"event_id": "x", "user_id": "mal", "track_id": "t1", "type": "play", "ts": 1e999}':
            ("invalid_json", "infinity"),
        orjson.dumps({**ok, "event_id": "neg", "type": "skip", "position_ms": -5, "duration_ms": 1000}):
            ("invalid_event", "position_ms"),
        orjson.dumps({**ok, "event_id": "dur", "duration_ms": -1}): ("invalid_event", "duration_ms"),
        orjson.dumps({**ok, "event_id": "fut", "ts": _now_ms() + 3 * 86_400_000}):
            ("bad_event_time", "clock is wrong"),
        orjson.dumps({**ok, "event_id": "sec", "ts": T0 // 1000}): ("bad_event_time", "before 2000"),
        orjson.dumps({**ok, "event_id": "typ", "type": "scream"}): ("invalid_event", "type"),
        orjson.dumps({**ok, "event_id": "ctl", "user_id": "mal\x1b[31m"}): ("invalid_event", "control"),
        orjson.dumps([ok]): ("invalid_event", "JSON object"),
        orjson.dumps({**ok, "event_id": "key", "user_id": "someone-else"}): ("key_mismatch", "user_id"),
        b"": ("invalid_json", "empty"),
    }


def test_hostile_messages_are_dead_lettered_with_reasons_and_the_flow_keeps_applying(env: Env, flow) -> None:
    env.produce(env.topics.tracks, track("t1", "pop", 0.6), key="t1")
    env.flush()
    wait_for(lambda: env.redis.hget(env.keys.catalog_tracks, "t1"), 30, "the catalog")
    hostile = _hostile_messages()
    good = 0
    for raw in hostile:
        good += 1
        env.produce(env.topics.events, event(f"good{good}", "mal", "t1", "play", ts=T0 + good), key="mal")
        env.produce(env.topics.events, raw, key="mal")
    # An event for a track the catalog does not know is held for it (tests/integration/test_trust.py),
    # not applied yet: it teaches nothing meanwhile.
    env.produce(env.topics.events, event("unknown", "mal", "no-such-track", "like", ts=T0 + 999), key="mal")
    env.flush()

    profile = env.wait_for_version("mal", good)
    wait_for(lambda: env.redis.hget(env.keys.ops_counters, "events_held") == b"1", 20, "the held event")
    assert env.profile("mal").version == good and profile.as_of_ms == T0 + good
    assert "no-such-track" not in [r.track_id for r in profile.recent]
    assert set(profile.genres) == {"pop"}, "the unknown track taught no genre"

    letters = env.dead_letters(expected=len(hostile))
    assert len(letters) == len(hostile)
    seen = {}
    for letter in letters:
        headers = dict(letter.headers)
        seen[letter.value or b""] = (headers[DEAD_LETTER_HEADERS["code"]].decode(),
                                     headers[DEAD_LETTER_HEADERS["reason"]].decode())
    for raw, (code, phrase) in hostile.items():
        got_code, reason = seen[raw]
        assert got_code == code, (raw[:60], reason)
        assert phrase in reason, (raw[:60], reason)
    counts = {k.decode(): int(v) for k, v in env.redis.hgetall(env.keys.ops_dead_letters).items()}
    assert sum(counts.values()) == len(hostile)
    assert flow.alive()
