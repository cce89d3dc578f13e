"""Auth, limits and outages on the real API: errors are JSON, say what is wrong, and never 500."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace

import orjson
import pytest
from fastapi.testclient import TestClient

from encore.local import create_topics, start_broker
from encore.serve_main import serving_config
from schemas.topics import Topics
from serving.app import create_app
from tests.integration.conftest import Env, event, wait_for

pytestmark = pytest.mark.integration

WRITER = "writer-secret-0001"
READER = "reader-secret-0002"
ADMIN = "admin-secret-00003"
KEYS = (
    f'[{{"name": "player", "key": "{WRITER}", "scopes": ["write"]}},'
    f' {{"name": "recs", "key": "sha256:{hashlib.sha256(READER.encode()).hexdigest()}", "scopes": ["read"],'
    f'   "rate_per_s": 1, "burst": 3}},'
    f' {{"name": "ops", "key": "{ADMIN}", "scopes": ["admin", "read", "write"]}}]'
)


def _client(env: Env, **changes: object) -> TestClient:
    return TestClient(create_app(serving_config(env.settings.with_(**changes))))


def test_api_keys_scopes_and_rate_limits(env: Env) -> None:
    with _client(env, api_keys=KEYS) as api:
        missing = api.get("/v1/users/a/profile")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthenticated"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert api.get("/v1/users/a/profile", headers={"Authorization": "Bearer nope"}).status_code == 401

        as_reader = {"Authorization": f"Bearer {READER}"}
        posted = api.post("/v1/events", json=event("s1", "a", "t", "play"), headers=as_reader)
        assert posted.status_code == 403
        assert posted.json()["error"] == {"code": "forbidden", "details": [],
                                          "message": "the key 'recs' lacks the 'write' scope"}
        as_writer = {"X-API-Key": WRITER}
        accepted = api.post("/v1/events", json=event("s1", "a", "t", "play"), headers=as_writer)
        assert accepted.status_code == 202
        assert api.post("/v1/tracks", json=[], headers=as_writer).status_code == 403

        # The reader's bucket holds 3 requests and refills at 1/s: the 4th in a row is refused.
        codes = [api.get("/v1/users/a/profile", headers=as_reader).status_code for _ in range(4)]
        assert codes[:3] == [404, 404, 404] and codes[3] == 429
        limited = api.get("/v1/users/a/profile", headers=as_reader)
        assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
        assert "x-encore-auth" not in limited.headers
        assert api.get("/healthz").status_code == 200, "the liveness probe needs no key"


def test_demo_mode_says_so_on_every_response(env: Env) -> None:
    with _client(env) as api:
        response = api.get("/v1/users/a/profile")
        assert response.status_code == 404
        assert response.headers["x-encore-auth"].startswith("demo-mode")


def test_request_bodies_over_the_limit_are_refused_with_413(env: Env) -> None:
    with _client(env, max_body_bytes=4096) as api:
        big = [event(f"b{i}", "a", "t", "play") for i in range(100)]
        declared = api.post("/v1/events", json=big)
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "body_too_large"

        def chunks():  # no Content-Length: the cap holds while the body streams in
            for _ in range(10):
                yield b" " * 1000

        streamed = api.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


def test_cors_allows_only_configured_origins(env: Env) -> None:
    with _client(env, cors_origins=("https://player.example",)) as api:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = api.options("/v1/events", headers={"Origin": "https://player.example", **preflight})
        assert allowed.headers["access-control-allow-origin"] == "https://player.example"
        other = api.options("/v1/events", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers


def test_a_broker_outage_answers_503_and_never_acknowledges(env: Env, tmp_path) -> None:
    broker, bootstrap = start_broker(tmp_path)
    port = int(bootstrap.rsplit(":", 1)[1])
    topics = Topics(env.settings.namespace)
    create_topics(bootstrap, topics.all(), partitions=1)
    # The producer gives up on a message before the handler stops waiting, so an event answered
    # with 503 is never written later, when the broker comes back.
    config = replace(serving_config(env.settings.with_(kafka_bootstrap=bootstrap)), produce_timeout_s=3.0)
    try:
        with TestClient(create_app(config)) as api:
            assert api.post("/v1/events", json=event("o1", "a", "t", "play")).status_code == 202
            broker.stop()
            started = time.monotonic()
            down = api.post("/v1/events", json=event("o2", "a", "t", "play"))
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "broker_unavailable"
            assert time.monotonic() - started < 15

            broker, _ = start_broker(tmp_path, port=port)  # memory storage: a new, empty log
            create_topics(bootstrap, topics.all(), partitions=1)
            wait_for(lambda: api.post("/v1/events", json=event("o3", "a", "t", "play")).status_code == 202,
                     30, "the API to accept events again")
        # The refused event was never written: the new log holds only what was acknowledged after.
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=1000)
        partition = TopicPartition(topics.events, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        ids = {orjson.loads(m.value)["event_id"] for m in consumer}
        consumer.close()
        assert "o2" not in ids and "o3" in ids
    finally:
        broker.stop()
