"""Encore on a real Redis Cluster: three redis-server masters made into a cluster by
`redis-cli --cluster create`, the flow (two Bytewax processes) and the API both given
`ENCORE_REDIS_URL=redis+cluster://...`. Events posted to the API go through Kafka and the flow
into profiles spread over the cluster's nodes, and come back as recommendations."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from redis.cluster import ClusterNode, RedisCluster

from encore.local import ManagedProcess, create_topics, start_redis_cluster
from encore.settings import Settings
from schemas.keys import KeyLayout
from schemas.redis_url import parse_redis_url
from schemas.topics import Topics
from tests.integration.conftest import Env, Services, event, track, wait_for

pytestmark = pytest.mark.integration

USERS = 24


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        servers, url = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot start a Redis Cluster on this machine: {exc}")
    try:
        yield url
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def cluster_env(services: Services, redis_cluster: str) -> Iterator[Env]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({}).with_(
        kafka_bootstrap=services.bootstrap, redis_url=redis_cluster, namespace=namespace,
        partitions=2, catalog_refresh_s=0.2, data_dir=services.workdir / namespace)
    create_topics(services.bootstrap, Topics(namespace).all(), partitions=2)
    nodes = [ClusterNode(host, port) for host, port in parse_redis_url(redis_cluster).nodes]
    client = RedisCluster(startup_nodes=nodes)
    producer = Producer({"bootstrap.servers": services.bootstrap, "linger.ms": 1})
    try:
        yield Env(services, settings, Topics(namespace), KeyLayout(namespace), client, producer)
    finally:
        producer.flush(5)
        client.close()


def _keys_per_node(client: RedisCluster, pattern: str) -> dict[str, int]:
    return {node.name: sum(1 for _ in node.redis_connection.scan_iter(match=pattern, count=500))
            for node in client.get_primaries()}


def test_the_flow_and_the_api_round_trip_on_a_redis_cluster(cluster_env: Env) -> None:
    env = cluster_env
    log_path = Path(env.services.workdir) / "logs" / f"flow-{env.settings.namespace}-cluster.log"
    flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow", "--processes", "2"],
                          log_path, env={**env.settings.to_env(), "BYTEWAX_DATAFLOW_API_ENABLED": "false"}
                          ).start()
    try:
        with env.api() as api:
            tracks = [track(f"r{i}", "rock", 0.8 + i / 100) for i in range(6)]
            tracks += [track(f"j{i}", "jazz", 0.1 + i / 100) for i in range(6)]
            assert api.post("/v1/tracks", json=tracks).status_code == 202
            wait_for(lambda: len(api.app.state.catalog.index) == len(tracks), 30, "the API's catalog")

            # Every listener likes a rock track and skips a jazz one early.
            users = [f"listener-{i}" for i in range(USERS)]
            for i, user in enumerate(users):
                body = [event(f"{user}-1", user, f"r{i % 3}", "like", ts="2026-11-21T08:00:00Z"),
                        event(f"{user}-2", user, f"j{i % 3}", "skip", ts="2026-11-21T08:00:30Z",
                              position_ms=5_000, duration_ms=200_000)]
                assert api.post("/v1/events", json=body).status_code == 202
            for user in users:
                env.wait_for_version(user, 2)

            recs = api.get(f"/v1/users/{users[0]}/recommendations", params={"k": 3}).json()
            assert recs["cold_start"] is False and recs["profile_version"] == 2
            assert recs["as_of"] == "2026-11-21T08:00:30.000Z"
            assert all(item["genres"] == ["rock"] for item in recs["items"])
            assert "r0" not in [item["track_id"] for item in recs["items"]]
            profile = api.get(f"/v1/users/{users[0]}/profile").json()
            assert profile["events_applied"] == 2 and profile["top_genres"][0]["name"] == "rock"

            # A like posted now changes the very next read.
            assert api.post("/v1/events", json=event("more", users[0], "j5", "like",
                                                     ts="2026-11-21T08:05:00Z")).status_code == 202
            env.wait_for_version(users[0], 3)
            assert api.get(f"/v1/users/{users[0]}/recommendations").json()["profile_version"] == 3

            # The ops surfaces read the flow's progress and counters from the cluster too.
            ready = wait_for(lambda: (r := api.get("/readyz")).status_code == 200 and r.json(), 20,
                             "/readyz to answer 200")
            assert ready["checks"]["redis"]["ok"] and ready["checks"]["flow_heartbeat"]["ok"]
            metrics = api.get("/metrics").text
            assert 'encore_ops_source_up{source="redis"} 1.0' in metrics
            assert api.get("/v1/ops/summary").status_code == 200
            assert api.get("/v1/ops/lag").status_code == 200
    finally:
        flow.stop()
    assert flow.process is not None and flow.process.returncode == 0, flow.tail(30)

    # The profiles really are spread over the cluster's masters (each key's slot from its hash tag).
    per_node = _keys_per_node(env.redis, f"{env.settings.namespace}:v1:{{u:*}}:profile")
    assert sum(per_node.values()) == USERS
    assert sum(1 for count in per_node.values() if count) >= 2, per_node
