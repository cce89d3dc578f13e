"""Integration fixtures: a real Tansu broker and a real redis-server, started once per session on
free loopback ports (never the machine's own Redis), and a fresh namespace (topics and keys) per
test so tests cannot see each other's data."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import redis
from confluent_kafka import Producer
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from encore.local import ManagedProcess, create_topics, start_broker, start_redis
from encore.serve_main import serving_config
from encore.settings import Settings
from schemas.keys import KeyLayout
from schemas.profile_codec import UserProfile, decode_profile
from schemas.topics import Topics
from serving.app import create_app
from tests.tracing_support import spans  # noqa: F401 - the in-memory span exporter fixture

T = TypeVar("T")

T0 = 1_795_000_000_000
"""A realistic event time (2026-11-18) for tests' events to count from."""

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Services:
    bootstrap: str
    redis_url: str
    workdir: Path


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    workdir = tmp_path_factory.mktemp("stack")
    broker, bootstrap = start_broker(workdir / "logs")
    redis_server, redis_url = start_redis(workdir / "redis")
    try:
        yield Services(bootstrap, redis_url, workdir)
    finally:
        redis_server.stop()
        broker.stop()


@dataclass
class Env:
    """One test's slice of the stack: its own namespace, with helpers to drive and observe it."""

    services: Services
    settings: Settings
    topics: Topics
    keys: KeyLayout
    redis: redis.Redis
    producer: Producer

    def produce(self, topic: str, value: bytes | dict[str, Any], key: str | bytes | None = None) -> None:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        if isinstance(key, str):
            key = key.encode()
        self.producer.produce(topic, value=raw, key=key)

    def flush(self) -> None:
        assert self.producer.flush(10) == 0, "the broker did not acknowledge every message"

    def profile(self, user_id: str) -> UserProfile | None:
        raw = self.redis.get(self.keys.profile(user_id))
        return decode_profile(raw, user_id) if raw is not None else None

    def wait_for_version(self, user_id: str, version: int, timeout_s: float = 30.0) -> UserProfile:
        profile = wait_for(lambda: _at_least(self.profile(user_id), version), timeout_s,
                           f"profile of {user_id} to reach version {version}")
        return profile

    def dead_letters(self, expected: int, timeout_s: float = 20.0) -> list[Any]:
        # Assigned partitions, no consumer group: nothing to coordinate, read from the start.
        consumer = KafkaConsumer(bootstrap_servers=self.services.bootstrap, consumer_timeout_ms=500)
        partitions = [TopicPartition(self.topics.dead_letters, p)
                      for p in consumer.partitions_for_topic(self.topics.dead_letters) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = time.monotonic() + timeout_s
        try:
            while len(found) < expected and time.monotonic() < deadline:
                found.extend(consumer)
        finally:
            consumer.close()
        return found

    def start_flow(self) -> ManagedProcess:
        log_path = self.services.workdir / "logs" / f"flow-{self.settings.namespace}.log"
        flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"], log_path,
                              env=self.settings.to_env()).start()
        return flow

    def api(self) -> TestClient:
        return TestClient(create_app(serving_config(self.settings)))


def _at_least(profile: UserProfile | None, version: int) -> UserProfile | None:
    return profile if profile is not None and profile.version >= version else None


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def env(services: Services) -> Iterator[Env]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({}).with_(
        kafka_bootstrap=services.bootstrap, redis_url=services.redis_url, namespace=namespace,
        partitions=2, catalog_refresh_s=0.2, data_dir=services.workdir / namespace,
    )
    topics = Topics(namespace)
    create_topics(services.bootstrap, topics.all(), partitions=2)
    client = redis.Redis.from_url(services.redis_url)
    producer = Producer({"bootstrap.servers": services.bootstrap, "linger.ms": 1})
    try:
        yield Env(services, settings, topics, KeyLayout(namespace), client, producer)
    finally:
        producer.flush(5)
        client.close()


@pytest.fixture
def flow(env: Env) -> Iterator[ManagedProcess]:
    process = env.start_flow()
    try:
        yield process
    finally:
        process.stop()
        if process.process is not None and process.process.returncode not in (0, -15):
            print(process.tail(40))


def track(track_id: str, genre: str, energy: float, **overrides: Any) -> dict[str, Any]:
    """A catalog track whose features sit in a genre's corner of the feature space."""
    base = {
        "track_id": track_id, "title": f"Song {track_id}", "artist": f"Artist {track_id[:3]}",
        "genres": [genre], "popularity": 50,
        "danceability": 0.5, "energy": energy, "valence": 0.5, "acousticness": 1 - energy,
        "instrumentalness": 0.0, "liveness": 0.1, "speechiness": 0.05,
        "tempo": 80 + 80 * energy, "loudness": -20 + 15 * energy,
    }
    return {**base, **overrides}


def event(event_id: str, user_id: str, track_id: str, type_: str, ts: int | str = T0,
          **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user_id, "track_id": track_id, "type": type_, "ts": ts,
            **extra}
