"""Delivery guarantees on the real components: nothing lost, nothing counted twice.

Each test replays the same fixed stream under some adversity (a crashing flow, retried events, a
Redis outage) and compares every resulting profile, field by field, with a clean run.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from encore.catalog_csv import DEFAULT_SAMPLE, read_spotify_csv
from encore.catalog_loader import load_catalog
from encore.local import ManagedProcess, start_redis
from schemas.keys import KeyLayout
from schemas.profile_codec import UserProfile, decode_profile
from schemas.topics import DEAD_LETTER_HEADERS
from tests.integration.conftest import Env, Services, wait_for
from tests.integration.streams import (
    encode,
    final_versions,
    listening_stream,
    own_events_between,
    profile_differences,
    with_delayed_duplicates,
    with_duplicates,
)
from tests.integration.test_flow_models import (
    StoredTracks,
    TrackReference,
    track_reference,
    wait_for_tracks,
)

pytestmark = pytest.mark.integration

EVENTS = 24_000
USERS = 400
CATALOG_SIZE = len(read_spotify_csv(DEFAULT_SAMPLE))


def _load_catalog(env: Env) -> None:
    load_catalog(env.services.bootstrap, env.settings.namespace, DEFAULT_SAMPLE)
    wait_for(lambda: env.redis.hlen(env.keys.catalog_tracks) == CATALOG_SIZE, 60, "the catalog")


def _produce(env: Env, stream: list[dict[str, Any]]) -> None:
    for event in stream:
        env.produce(env.topics.events, encode(event), key=event["user_id"])
        env.producer.poll(0)
    env.flush()


def _processed(env: Env) -> int:
    """Events-topic messages the flow has recorded as processed (summed next offsets)."""
    prefix = env.topics.events + ":"
    return int(sum(score for member, score in env.redis.zrange(env.keys.ops_offsets, 0, -1, withscores=True)
                   if member.decode().startswith(prefix)))


def _profiles(client: redis.Redis, keys: KeyLayout, users: list[str]) -> dict[str, UserProfile]:
    values = client.mget([keys.profile(u) for u in users])
    return {u: decode_profile(v, u) for u, v in zip(users, values, strict=True) if v is not None}


def _wait_complete(env: Env, stream: list[dict[str, Any]], timeout_s: float = 120) -> dict[str, UserProfile]:
    """Wait until every message is processed and every profile holds its final version."""
    expected = final_versions(stream)
    users = sorted(expected)

    def done() -> dict[str, UserProfile] | None:
        try:
            if _processed(env) < len(stream):
                return None
            profiles = _profiles(env.redis, env.keys, users)
        except redis.BusyLoadingError:  # a restarted Redis still loading its append-only file
            return None
        complete = len(profiles) == len(users) and all(profiles[u].version == expected[u] for u in users)
        return profiles if complete else None

    return wait_for(done, timeout_s, "every event to be applied")


def _assert_same_profiles(expected: dict[str, UserProfile], actual: dict[str, UserProfile]) -> None:
    assert expected.keys() == actual.keys()
    differing = {u: profile_differences(expected[u], actual[u]) for u in expected if expected[u] != actual[u]}
    assert not differing, f"{len(differing)} profiles differ, e.g. {list(differing.items())[:3]}"


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return listening_stream(EVENTS, USERS)


@pytest.fixture(scope="module")
def clean(services: Services, stream: list[dict[str, Any]], track_ref: TrackReference
          ) -> tuple[dict[str, UserProfile], StoredTracks]:
    """The reference: the stream through one uninterrupted flow; its profiles and track keys."""
    env = _module_env(services)
    flow = env.start_flow()
    try:
        _load_catalog(env)
        _produce(env, stream)
        profiles = _wait_complete(env, stream)
        return profiles, wait_for_tracks(env, track_ref)
    finally:
        flow.stop()


@pytest.fixture(scope="module")
def clean_run(clean: tuple[dict[str, UserProfile], StoredTracks]) -> dict[str, UserProfile]:
    return clean[0]


@pytest.fixture(scope="module")
def track_ref(stream: list[dict[str, Any]]) -> TrackReference:
    """Item stats and co-listening of the stream, learned event by event: what the track keys hold."""
    genres = {t.track_id: tuple(t.genres) for t in read_spotify_csv(DEFAULT_SAMPLE)}
    return track_reference(stream, genres)


def _assert_same_tracks(expected: StoredTracks, actual: StoredTracks) -> None:
    """Two runs' track keys: equal up to the rounding of summing in another order."""
    assert expected.stats.keys() == actual.stats.keys()
    for track_id, fields in expected.stats.items():
        got = actual.stats[track_id]
        assert got.keys() == fields.keys(), track_id
        assert all(float(got[f]) == pytest.approx(float(v), rel=1e-9) for f, v in fields.items()), track_id
        rates = [float(x) for x in actual.rates[track_id].split(",")]
        assert rates == pytest.approx([float(x) for x in expected.rates[track_id].split(",")], rel=1e-5)
    assert actual.trending == pytest.approx(expected.trending, rel=1e-6, abs=1e-12)
    for track_id, row in expected.neighbours.items():
        assert dict(actual.neighbours[track_id]) == pytest.approx(dict(row), rel=1e-9), track_id


def _module_env(services: Services) -> Env:
    # Module-scoped twin of the `env` fixture (which is per test).
    import uuid

    from confluent_kafka import Producer

    from encore.local import create_topics
    from encore.settings import Settings
    from schemas.topics import Topics

    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({}).with_(
        kafka_bootstrap=services.bootstrap, redis_url=services.redis_url, namespace=namespace,
        partitions=2, catalog_refresh_s=0.2, data_dir=services.workdir / namespace)
    create_topics(services.bootstrap, Topics(namespace).all(), partitions=2)
    return Env(services, settings, Topics(namespace), KeyLayout(namespace),
               redis.Redis.from_url(services.redis_url),
               Producer({"bootstrap.servers": services.bootstrap, "linger.ms": 5}))


CRASH_EVERY_S = 2.5
CRASHES = 4
PACE_EVENTS_PER_S = 800
"""The stream must outlast every kill and restart (each restart takes a few seconds, and a kill
waits for a snapshot after the restart): at 2,000/s a flow that drains a backlog in large batches
had processed all 24,000 events before the fourth kill, and the kills were no longer mid-stream;
at 1,000/s, once kills waited for that snapshot on a slow machine, the fourth came at the end."""


def _produce_paced(env: Env, stream: list[dict[str, Any]], rate: float) -> threading.Thread:
    """Produce the stream at about `rate` events/s in the background, as live traffic arrives."""
    from confluent_kafka import Producer

    def run() -> None:
        producer = Producer({"bootstrap.servers": env.services.bootstrap, "linger.ms": 5})
        started = time.monotonic()
        for sent, event in enumerate(stream):
            lead = sent / rate - (time.monotonic() - started)
            if lead > 0.05:
                time.sleep(lead)
            producer.produce(env.topics.events, encode(event), key=event["user_id"])
            producer.poll(0)
        assert producer.flush(30) == 0

    thread = threading.Thread(target=run, name="paced-producer", daemon=True)
    thread.start()
    return thread


def _committed_epoch(env: Env) -> int:
    """The epoch a restart would resume from: the oldest of the recovery partitions' latest committed
    epochs (Bytewax's `commits` table), 0 before every partition has committed one."""
    epochs = []
    for path in sorted(Path(env.settings.recovery_dir).glob("*.sqlite3")):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as db:
                row = db.execute("SELECT MAX(commit_epoch) FROM commits").fetchone()
        except sqlite3.Error:  # being written: read it at the next poll
            return -1
        epochs.append(row[0] if row and row[0] is not None else 0)
    return min(epochs, default=0)


def _kill_repeatedly(env: Env, flow: Any, crashes: list[int]) -> Any:
    """SIGKILL the flow `CRASHES` times mid-stream (no shutdown, no final snapshot), restarting it
    each time. A kill waits until the (re)started flow has made progress and then committed a
    snapshot after it: on a slow machine a resumed flow drains its backlog in one long epoch, and a
    kill before that epoch commits sends the next restart back to the same old snapshot, so the
    replays pile up (the bound below is on the replay of a resume that worked). Returns the running
    flow."""
    for _ in range(CRASHES):
        last = crashes[-1] if crashes else 0
        wait_for(lambda last=last: _processed(env) > last + 1_000, 60, "progress before a kill")
        committed = max(_committed_epoch(env), 0)
        wait_for(lambda committed=committed: _committed_epoch(env) > committed or None, 60,
                 "a snapshot after that progress")
        time.sleep(CRASH_EVERY_S / 10)  # then mid-epoch
        flow.kill()
        crashes.append(_processed(env))
        flow = env.start_flow()
    return flow


def test_profiles_and_track_stats_after_repeated_sigkill_and_resume_equal_a_clean_run(
    env: Env, stream: list[dict[str, Any]], clean: tuple[dict[str, UserProfile], StoredTracks],
    track_ref: TrackReference,
) -> None:
    clean_run, clean_tracks = clean
    env.settings = env.settings.with_(snapshot_interval_s=1)
    flow = env.start_flow()
    crashes: list[int] = []
    try:
        _load_catalog(env)
        producer = _produce_paced(env, stream, PACE_EVENTS_PER_S)
        flow = _kill_repeatedly(env, flow, crashes)
        producer.join(60)
        profiles = _wait_complete(env, stream)
        # Item stats and co-listening are sums: a replayed event counted twice would show here.
        tracks = wait_for_tracks(env, track_ref)
    finally:
        flow.stop()
    counters = {k.decode(): int(v) for k, v in env.redis.hgetall(env.keys.ops_counters).items()}
    replayed = counters["events_applied"] - len(stream)
    points = ", ".join(f"{c} ({c / len(stream):.0%})" for c in crashes)
    print(f"SIGKILLed the flow after {points} events processed; "
          f"{replayed} events re-applied after resuming from snapshots")
    assert all(0 < a < b < len(stream) for a, b in itertools.pairwise(crashes)), crashes
    _assert_same_profiles(clean_run, profiles)
    _assert_same_tracks(clean_tracks, tracks)
    # Each restart resumed from its last snapshot (replaying about one snapshot interval); starting
    # over from the topics' beginning would have re-applied everything processed before each kill.
    assert 0 <= replayed < 0.5 * sum(crashes)


def test_a_stream_with_ten_percent_duplicates_gives_the_same_profiles_and_track_stats(
    env: Env, stream: list[dict[str, Any]], clean_run: dict[str, UserProfile], track_ref: TrackReference
) -> None:
    duplicated = with_duplicates(stream, 0.10)
    assert len(duplicated) == len(stream) + len(stream) // 10
    flow = env.start_flow()
    try:
        _load_catalog(env)
        _produce(env, duplicated)
        profiles = _wait_complete(env, duplicated)
        wait_for_tracks(env, track_ref)  # duplicates add nothing to the track sums
    finally:
        flow.stop()
    _assert_same_profiles(clean_run, profiles)
    counters = {k.decode(): int(v) for k, v in env.redis.hgetall(env.keys.ops_counters).items()}
    assert counters["events_applied"] == len(stream)
    assert counters["events_duplicate"] == len(stream) // 10


HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def delayed(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """10 % of the events sent again 2 to 10 hours of event time later (a player retrying a batch it
    buffered offline), most of them far beyond the listener's last 24 events."""
    return with_delayed_duplicates(stream, 0.10, 2 * HOUR_MS, 10 * HOUR_MS)


def test_delayed_duplicates_hours_later_with_sigkills_give_the_same_profiles_and_track_stats(
    env: Env, stream: list[dict[str, Any]], delayed: list[dict[str, Any]],
    clean: tuple[dict[str, UserProfile], StoredTracks], track_ref: TrackReference,
) -> None:
    clean_run, clean_tracks = clean
    gaps = own_events_between(delayed)
    copies = len(delayed) - len(stream)
    beyond = sum(g > 24 for g in gaps)
    assert copies == len(stream) // 10 and beyond > copies // 3
    env.settings = env.settings.with_(snapshot_interval_s=1)
    flow = env.start_flow()
    crashes: list[int] = []
    try:
        _load_catalog(env)
        producer = _produce_paced(env, delayed, PACE_EVENTS_PER_S)
        flow = _kill_repeatedly(env, flow, crashes)
        producer.join(60)
        profiles = _wait_complete(env, delayed)
        tracks = wait_for_tracks(env, track_ref)
    finally:
        flow.stop()
    counters = {k.decode(): int(v) for k, v in env.redis.hgetall(env.keys.ops_counters).items()}
    differing = sum(clean_run[u] != profiles.get(u) for u in clean_run)
    print(f"{copies} copies 2-10 h of event time later, {beyond} of them after more than 24 of their "
          f"listener's own events (median {sorted(gaps)[len(gaps) // 2]}); SIGKILLed after "
          f"{', '.join(map(str, crashes))} messages processed; {len(clean_run)} profiles compared, "
          f"{differing} differ; {counters.get('events_duplicate', 0)} duplicates dropped")
    assert all(0 < a < b < len(delayed) for a, b in itertools.pairwise(crashes)), crashes
    _assert_same_profiles(clean_run, profiles)
    _assert_same_tracks(clean_tracks, tracks)
    # Replays after a kill see some copies twice, and count them twice; never fewer than the copies.
    assert counters["events_duplicate"] >= copies


def test_with_a_short_horizon_old_copies_are_dead_lettered_too_late_and_none_is_applied(
    env: Env, stream: list[dict[str, Any]], delayed: list[dict[str, Any]], clean_run: dict[str, UserProfile],
) -> None:
    # A 4-hour horizon: copies more than 4 h before their listener's newest event are too late to
    # tell, the others are duplicates; either way, not applied.
    env.settings = env.settings.with_(dedupe_horizon_s=4 * 3600)
    copies = len(delayed) - len(stream)

    def tallied() -> tuple[dict[str, int], int] | None:  # the dead-letter tally is a sink of its own
        counters = {k.decode(): int(v) for k, v in env.redis.hgetall(env.keys.ops_counters).items()}
        late = int(env.redis.hget(env.keys.ops_dead_letters, "too_late") or 0)
        return (counters, late) if counters.get("events_duplicate", 0) + late >= copies else None

    flow = env.start_flow()
    try:
        _load_catalog(env)
        _produce(env, delayed)
        profiles = _wait_complete(env, delayed)
        counters, late = wait_for(tallied, 30, "every copy to be dropped or dead-lettered")
    finally:
        flow.stop()
    _assert_same_profiles(clean_run, profiles)
    print(f"4 h horizon: {copies} copies, {counters['events_duplicate']} dropped as duplicates, "
          f"{late} dead-lettered too_late")
    assert counters["events_applied"] == len(stream)
    assert late > 0 and counters["events_duplicate"] > 0
    assert counters["events_duplicate"] + late == copies
    letters = env.dead_letters(expected=late)
    assert {dict(m.headers)[DEAD_LETTER_HEADERS["code"]] for m in letters} == {b"too_late"}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[list[ManagedProcess], str, Path]]:
    """A redis-server of this test's own, with an append-only file, so it can be stopped."""
    data_dir = tmp_path / "redis"
    server, url = start_redis(data_dir)
    servers = [server]
    try:
        yield servers, url, data_dir
    finally:
        for running in servers:
            running.stop()


def test_a_redis_outage_mid_stream_loses_nothing_and_the_api_answers_503_meanwhile(
    env: Env, stream: list[dict[str, Any]], clean_run: dict[str, UserProfile], own_redis
) -> None:
    servers, url, data_dir = own_redis
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    env.settings = env.settings.with_(redis_url=url)
    env.redis = redis.Redis.from_url(url)
    half = len(stream) // 2
    flow = env.start_flow()
    try:
        _load_catalog(env)
        with TestClient(_api(env)) as api:
            _produce(env, stream[:half])
            wait_for(lambda: _processed(env) >= half // 2, 60, "some progress before the outage")
            assert api.get("/v1/users/u0000/recommendations").status_code == 200

            servers[0].stop()  # graceful: the append-only file keeps what was written
            outage = api.get("/v1/users/u0000/recommendations")
            assert outage.status_code == 503
            assert outage.json()["error"]["code"] == "redis_unavailable"
            _produce(env, stream[half:])  # Kafka keeps taking events while Redis is down
            time.sleep(2)
            assert flow.alive(), "the flow waits for Redis; it does not die"

            restarted, _ = start_redis(data_dir, port=port)
            servers.append(restarted)
            profiles = _wait_complete(env, stream)
            wait_for(lambda: api.get("/v1/users/u0000/recommendations").status_code == 200, 20,
                     "the API to recover by itself")
    finally:
        flow.stop()
    _assert_same_profiles(clean_run, profiles)


def _api(env: Env):
    from encore.serve_main import serving_config
    from serving.app import create_app

    return create_app(serving_config(env.settings))
