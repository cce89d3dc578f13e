"""Operators' view on a real broker, Redis and flow: lag in messages and seconds on every surface
(API, `encore lag`, Prometheus, the Kafka consumer group), readiness, and the offset committer."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from encore.local import free_port
from encore.serve_main import serving_config
from flows.offset_commit import OffsetCommitter
from serving.app import create_app
from tests.integration.conftest import Env, event, track, wait_for
from tests.ops_support import encore_lag, group_offsets, scrape, start_flow

pytestmark = pytest.mark.integration

BURST = 300


def _lag(api: Any) -> dict[str, Any]:
    response = api.get("/v1/ops/lag")
    assert response.status_code == 200, response.text
    return response.json()


def _topic(body: dict[str, Any], topic: str) -> dict[str, Any]:
    return next(t for t in body["topics"] if t["topic"] == topic)


def _table_total(output: str, topic: str) -> tuple[int, float]:
    """(lag in messages, lag in seconds) of a topic's total row in `encore lag`'s table."""
    match = re.search(rf"^{re.escape(topic)}\s+total\s+([\d,]+)\s+([\d.]+)", output, re.MULTILINE)
    assert match, output
    return int(match.group(1).replace(",", "")), float(match.group(2))


def _metric_lag(api: Any, group: str, topic: str) -> tuple[float, float]:
    """(sum of lag in messages, max of lag in seconds) of a topic in /metrics."""
    response = api.get("/metrics")
    assert response.status_code == 200
    samples = scrape(response.text)

    def of(name: str) -> list[float]:
        return [v for labels, v in samples.get(name, []) if labels.get("group") == group
                and labels.get("topic") == topic]

    return sum(of("kafka_consumergroup_group_lag")), max(of("kafka_consumergroup_group_lag_seconds"))


def _kafka_tool_lag(env: Env, body: dict[str, Any]) -> int:
    """Lag as any Kafka lag tool computes it: log end minus the group's committed offset."""
    committed = group_offsets(env.services.bootstrap, env.topics.consumer_group)
    return sum(p["end_offset"] - committed.get((p["topic"], p["partition"]), 0)
               for p in _topic(body, env.topics.events)["partitions"])


def test_lag_grows_on_every_surface_while_the_flow_is_stopped_and_falls_to_zero_after_restart(
        env: Env) -> None:
    log_dir = env.services.workdir / "logs"
    group, events_topic = env.topics.consumer_group, env.topics.events
    env.produce(env.topics.tracks, track("t1", "pop", 0.6), key="t1")
    for i in range(20):
        env.produce(events_topic, event(f"warm{i}", f"u{i % 4}", "t1", "play"), key=f"u{i % 4}")
    env.flush()
    flow = start_flow(env.settings, log_dir)
    try:
        with env.api() as api:
            caught_up = wait_for(lambda: (b := _lag(api))["lag_messages"] == 0
                                 and _topic(b, events_topic)["partitions"][0]["end_offset"] > 0
                                 and env.redis.hget(env.keys.ops_counters, "events_applied") == b"20" and b,
                                 60, "the flow to catch up with the first 20 events")
            assert caught_up["group"] == group
            ready = wait_for(lambda: (r := api.get("/readyz")).status_code == 200 and r.json(), 20,
                             "readiness")
            assert ready["ready"] is True and all(c["ok"] for c in ready["checks"].values())
            processed = {(p["topic"], p["partition"]): p["processed_offset"]
                         for t in caught_up["topics"] for p in t["partitions"] if p["processed_offset"] > 0}
            wait_for(lambda: group_offsets(env.services.bootstrap, group) == processed, 20,
                     "the flow to commit its processed offsets to the consumer group")

            flow.stop()
            # A burst in real batches (linger): the broker's high watermark must not hide any of it.
            burst_started = time.time()
            producer = Producer({"bootstrap.servers": env.services.bootstrap, "linger.ms": 20})
            for i in range(BURST):
                user = f"u{i % 7}"
                producer.produce(events_topic, key=user.encode(),
                                 value=_json(event(f"burst{i}", user, "t1", "like")))
            assert producer.flush(10) == 0

            body = wait_for(lambda: (b := _lag(api))["lag_messages"] == BURST and b, 10, "the burst as lag")
            topic = _topic(body, events_topic)
            assert topic["lag_messages"] == BURST
            assert sum(p["end_offset"] - p["processed_offset"] for p in topic["partitions"]) == BURST
            assert 0 < topic["lag_seconds"] <= time.time() - burst_started + 0.5
            assert _topic(body, env.topics.tracks)["lag_messages"] == 0
            # Seconds keep growing while nothing is processed.
            first = topic["lag_seconds"]
            later = wait_for(lambda: (s := _lag(api)["lag_seconds"]) >= first + 1.0 and s, 10,
                             "lag in seconds to grow")
            assert later > first

            assert _table_total(encore_lag(env.settings), events_topic)[0] == BURST
            assert _table_total(encore_lag(env.settings), events_topic)[1] >= later
            metric_messages, metric_seconds = _metric_lag(api, group, events_topic)
            assert metric_messages == BURST and metric_seconds >= later
            assert _kafka_tool_lag(env, body) == BURST

            flow = start_flow(env.settings, log_dir)
            wait_for(lambda: _lag(api)["lag_messages"] == 0, 60, "the restarted flow to catch up")
            messages, seconds = _table_total(encore_lag(env.settings), events_topic)
            assert (messages, seconds) == (0, 0.0)
            assert _metric_lag(api, group, events_topic) == (0, 0)
            wait_for(lambda: _kafka_tool_lag(env, _lag(api)) == 0, 20, "the consumer group to catch up")
            applied = int(env.redis.hget(env.keys.ops_counters, "events_applied"))
            assert applied >= 20 + BURST
            summary = api.get("/v1/ops/summary").json()
            assert summary["totals"]["events_processed"] == applied
            assert summary["lag"]["messages"] == 0 and summary["ready"] is True
    finally:
        flow.stop()


def _json(value: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(value)


def test_readyz_names_what_is_wrong_and_lag_counts_from_the_log_start_before_any_progress(env: Env) -> None:
    env.produce(env.topics.events, event("e1", "ana", "t1", "play"), key="ana")
    env.produce(env.topics.events, event("e2", "bo", "t1", "play"), key="bo")
    env.produce(env.topics.events, event("e3", "cy", "t1", "play"), key="cy")
    env.flush()
    with env.api() as api:
        assert api.get("/healthz").status_code == 200
        response = api.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        checks = body["checks"]
        assert checks["redis"]["ok"] and checks["kafka"]["ok"]
        assert not checks["catalog"]["ok"] and "catalog is empty" in checks["catalog"]["error"]
        assert not checks["flow_heartbeat"]["ok"] and "no flow heartbeat" in checks["flow_heartbeat"]["error"]

        env.redis.set(env.keys.ops_heartbeat, int(time.time() * 1000) - 60_000)
        stale = api.get("/readyz").json()["checks"]["flow_heartbeat"]
        assert not stale["ok"] and stale["age_s"] >= 59 and "stopped or stuck" in stale["error"]

        # Nothing processed yet: the flow's position is the start of each partition.
        lag = _lag(api)
        events = _topic(lag, env.topics.events)
        assert events["lag_messages"] == 3 and lag["lag_messages"] == 3
        assert all(p["processed_offset"] == p["beginning_offset"] == 0 for p in events["partitions"])
        assert events["lag_seconds"] > 0


def test_the_offset_committer_survives_an_unreachable_broker_and_commits_when_it_answers(env: Env) -> None:
    for partition in (0, 1):
        for _ in range(10):
            env.producer.produce(env.topics.events, value=b"{}", key=b"k", partition=partition)
    env.flush()
    env.redis.zadd(env.keys.ops_offsets, {f"{env.topics.events}:0": 5, f"{env.topics.events}:1": 7,
                                          f"{env.topics.dead_letters}:0": 3})
    group = env.topics.consumer_group
    down = OffsetCommitter([f"127.0.0.1:{free_port()}"], group, env.topics.consumed, env.redis, env.keys,
                           {"session.timeout.ms": "1000"})
    down.tick()  # logs and counts the failure, raises nothing
    assert down.failures == 1 and down.committed == {}
    down.close()

    up = OffsetCommitter([env.services.bootstrap], group, env.topics.consumed, env.redis, env.keys)
    up.tick()
    assert up.failures == 0
    expected = {(env.topics.events, 0): 5, (env.topics.events, 1): 7}  # only the consumed topics
    assert up.committed == expected
    assert group_offsets(env.services.bootstrap, group) == expected
    assert up.commit_once() == 0  # nothing moved, nothing sent
    env.redis.zadd(env.keys.ops_offsets, {f"{env.topics.events}:1": 9}, gt=True)
    assert up.commit_once() == 1
    assert group_offsets(env.services.bootstrap, group)[(env.topics.events, 1)] == 9
    up.close()


def test_the_operator_data_needs_an_admin_key_while_probes_and_the_page_shell_do_not(env: Env) -> None:
    keys = ('[{"name": "ops", "key": "admin-key-0123456789", "scopes": ["admin"]},'
            ' {"name": "recs", "key": "read-key-0123456789", "scopes": ["read"]}]')
    with TestClient(create_app(serving_config(env.settings.with_(api_keys=keys)))) as api:
        for path in ("/v1/ops/lag", "/v1/ops/summary", "/metrics"):
            assert api.get(path).status_code == 401, path
            assert api.get(path, headers={"Authorization": "Bearer read-key-0123456789"}).status_code == 403
            assert api.get(path, headers={"Authorization": "Bearer admin-key-0123456789"}).status_code == 200
        assert api.get("/readyz").status_code == 503  # no flow, no catalog: answered without a key
        page = api.get("/ops")
        assert page.status_code == 200 and "Encore" in page.text and 'id="auth"' in page.text
        assert api.get("/ops/static/ops.js").status_code == 200
