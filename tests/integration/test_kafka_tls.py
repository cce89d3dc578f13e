"""Every Kafka client of Encore over mutual TLS, configured only through ENCORE_KAFKA_CONFIG: the topic
admin creates the topics, the API's producer writes events and tracks, the flow (its source, its
dead-letter sink and its offset committer, in a subprocess that gets the options from the
environment) applies them to Redis, recommendations change, and the lag reader (`/v1/ops/lag`,
`/readyz`, `encore lag`) reads the log, all through a TLS endpoint that refuses plaintext and
clients without a certificate. See tests/integration/tls_kafka.py for why a TLS terminator stands in
front of the embedded broker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from encore.local import ManagedProcess, create_topics, free_port, start_broker
from encore.serve_main import serving_config
from encore.settings import Settings
from schemas.kafka_config import KafkaClientConfig
from schemas.keys import KeyLayout
from schemas.profile_codec import decode_profile
from schemas.topics import Topics
from serving.app import create_app
from tests.integration.conftest import Services, event, track, wait_for
from tests.integration.tls_kafka import KEY_PASSWORD, Certificates, TlsTerminator, make_certificates

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class TlsKafka:
    bootstrap: str
    certificates: Certificates
    terminator: TlsTerminator
    plaintext_port: int

    def options(self) -> dict[str, str]:
        return {
            "security.protocol": "SSL",
            "ssl.ca.location": str(self.certificates.ca),
            "ssl.certificate.location": str(self.certificates.client_cert),
            "ssl.key.location": str(self.certificates.client_key),
            "ssl.key.password": KEY_PASSWORD,
        }


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsKafka]:
    workdir = tmp_path_factory.mktemp("tls")
    certificates = make_certificates(workdir / "certs")
    broker_port, tls_port = free_port(), free_port()
    broker, _ = start_broker(workdir / "logs", port=broker_port, advertised_port=tls_port)
    terminator = TlsTerminator(certificates, broker_port, port=tls_port).start()
    try:
        yield TlsKafka(f"127.0.0.1:{tls_port}", certificates, terminator, broker_port)
    finally:
        terminator.stop()
        broker.stop()


def test_producer_flow_redis_and_lag_over_mutual_tls(tls_kafka: TlsKafka, services: Services,
                                                    tmp_path: Path) -> None:
    namespace = f"tls{uuid.uuid4().hex[:8]}"
    options_file = tmp_path / "kafka.json"  # the secret part in a file, the rest in the environment
    options = tls_kafka.options()
    options_file.write_text(json.dumps({"ssl.key.password": options.pop("ssl.key.password")}))
    env_vars = {"ENCORE_KAFKA_BOOTSTRAP": tls_kafka.bootstrap, "ENCORE_REDIS_URL": services.redis_url,
                "ENCORE_NAMESPACE": namespace, "ENCORE_KAFKA_CONFIG": json.dumps(options),
                "ENCORE_KAFKA_CONFIG_FILE": str(options_file), "ENCORE_PARTITIONS": "2",
                "ENCORE_CATALOG_REFRESH_S": "0.2", "ENCORE_DATA_DIR": str(tmp_path / "data")}
    settings = Settings.from_env(env_vars)
    assert settings.kafka_config["ssl.key.password"] == KEY_PASSWORD
    assert KEY_PASSWORD not in repr(settings)
    topics, keys = Topics(namespace), KeyLayout(namespace)

    # The topic admin (kafka-python) over TLS.
    handshakes = tls_kafka.terminator.handshakes
    assert sorted(create_topics(settings.require_kafka(), topics.all(), 2, settings.kafka_config)) == \
        sorted(topics.all())
    assert tls_kafka.terminator.handshakes > handshakes

    # The flow, in its own process, configured from the environment alone.
    flow_log = tmp_path / "flow.log"
    flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"], flow_log,
                          env={**settings.to_env(), "BYTEWAX_DATAFLOW_API_ENABLED": "false"}).start()
    client = redis.Redis.from_url(services.redis_url)
    try:
        with TestClient(create_app(serving_config(settings))) as api:
            # The API's producer over TLS: tracks, then events, each acknowledged by the broker.
            tracks = [track(f"r{i}", "rock", 0.8 + i / 100) for i in range(5)]
            tracks += [track(f"j{i}", "jazz", 0.1 + i / 100) for i in range(5)]
            assert api.post("/v1/tracks", json=tracks).status_code == 202
            wait_for(lambda: len(api.app.state.catalog.index) == 10, 60, "the catalog, through the flow")
            response = api.post("/v1/events", json=[event("tls-1", "tia", "r0", "like"),
                                                    event("tls-2", "tia", "r1", "complete")])
            assert response.status_code == 202, response.text

            def profile_version() -> int | None:
                raw = client.get(keys.profile("tia"))
                return decode_profile(raw, "tia").version if raw else None

            wait_for(lambda: (profile_version() or 0) >= 2, 60, "tia's profile, through the flow")
            recs = api.get("/v1/users/tia/recommendations", params={"k": 3}).json()
            assert recs["profile_version"] == 2 and recs["cold_start"] is False
            assert all(item["genres"] == ["rock"] for item in recs["items"])

            # A bad message: the flow's dead-letter sink writes over TLS too.
            from confluent_kafka import Producer

            producer = Producer({"bootstrap.servers": tls_kafka.bootstrap, **settings.kafka_config})
            producer.produce(topics.events, value=b"not json", key=b"tia")
            assert producer.flush(30) == 0
            wait_for(lambda: client.hget(keys.ops_dead_letters, "invalid_json"), 60, "the dead letter")

            # The lag reader (kafka-python) over TLS: the API's readiness and lag, then `encore lag`.
            def caught_up() -> dict | None:
                lag = api.get("/v1/ops/lag")
                body = lag.json()
                return body if lag.status_code == 200 and body["lag_messages"] == 0 else None

            lag = wait_for(caught_up, 60, "lag 0 on /v1/ops/lag")
            events_topic = next(t for t in lag["topics"] if t["topic"] == topics.events)
            assert sum(p["end_offset"] for p in events_topic["partitions"]) == 3
            ready = api.get("/readyz").json()
            assert ready["checks"]["kafka"]["ok"] is True, ready
        cli = subprocess.run([sys.executable, "-m", "encore.cli", "lag", "--json"], capture_output=True,
                             text=True, timeout=60, env={**settings.to_env(), "PATH": "/usr/bin:/bin"})
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["lag_messages"] == 0
        assert KEY_PASSWORD not in cli.stdout + cli.stderr
    finally:
        flow.stop()
        client.close()
    assert KEY_PASSWORD not in flow_log.read_text(errors="replace")


def test_the_endpoint_really_requires_tls_and_a_client_certificate(tls_kafka: TlsKafka) -> None:
    """The negative control: without the options, or without a client certificate, nothing works."""
    from kafka.errors import KafkaError

    from serving.lag import KafkaLogReader, LagUnavailable

    options = KafkaClientConfig.parse(tls_kafka.options())
    KafkaLogReader([tls_kafka.bootstrap], client_options=options.kafka_python()).ping()
    no_certificate = {k: v for k, v in options.kafka_python().items()
                      if k not in ("ssl_certfile", "ssl_keyfile", "ssl_password")}
    for client_options in ({}, no_certificate):
        reader = KafkaLogReader([tls_kafka.bootstrap], timeout_s=2.0, client_options=client_options)
        with pytest.raises((LagUnavailable, KafkaError)):
            reader.ping()
        reader.close()
