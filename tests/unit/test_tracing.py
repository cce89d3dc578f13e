"""OpenTelemetry tracing with the in-memory span exporter: the API's server span continues the caller's
trace and carries the request id, the producer's span context goes into the Kafka message headers,
the flow's span for that message joins the same trace, and nothing of it runs when tracing is off."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from bytewax.connectors.kafka import KafkaSourceMessage
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serving.config import ServingConfig
from serving.request_log import install_request_log

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def traced_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"thing": thing_id}

    install_request_log(app, ServingConfig(brokers=["x:1"], redis_url="redis://x:1/0", tracing=True))
    return app


def hex_ids(span: Any) -> tuple[str, str, str | None]:
    context = span.get_span_context()
    parent = span.parent
    return (format(context.trace_id, "032x"), format(context.span_id, "016x"),
            format(parent.span_id, "016x") if parent is not None else None)


def test_a_server_span_continues_the_callers_trace_with_the_request_id(spans: Any) -> None:
    from opentelemetry.trace import SpanKind

    response = TestClient(traced_app()).get("/v1/things/a", headers={"traceparent": TRACEPARENT,
                                                                     "x-request-id": "req-77"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "req-77"
    servers = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert len(servers) == 1, [s.name for s in spans.get_finished_spans()]  # FastAPI's own span is off
    (server,) = servers
    trace_id, _span_id, parent = hex_ids(server)
    assert (trace_id, parent) == (CALLER_TRACE, CALLER_SPAN)
    assert server.name == "GET /v1/things/{thing_id}"
    assert server.attributes["encore.request_id"] == "req-77"
    assert server.attributes["http.route"] == "/v1/things/{thing_id}"
    assert server.attributes["http.response.status_code"] == 200


def test_without_a_caller_trace_a_new_one_starts(spans: Any) -> None:
    TestClient(traced_app()).get("/v1/things/a")
    (server,) = spans.get_finished_spans()
    assert server.parent is None and server.get_span_context().is_valid


class FakeProducer:
    """confluent_kafka.Producer's produce/poll/flush, acknowledging at once, keeping the headers."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.messages: list[dict[str, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any, headers: Any = None) -> None:
        self.messages.append({"topic": topic, "key": key, "value": value, "headers": headers})
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def test_the_producer_puts_the_trace_context_in_the_message_headers_and_the_flow_joins_it(
    spans: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, StatusCode

    import serving.producer
    from flows.decode import decode_event_message
    from flows.tracing import traced_decode

    traced_app()  # installs the tracing (process-wide parts are undone by the fixture)
    monkeypatch.setattr(serving.producer, "Producer", FakeProducer)
    producer = serving.producer.AckedProducer(["x:1"], 5.0)
    event = {"event_id": "e-1", "user_id": "ana", "track_id": "t-1", "type": "like", "ts": 1_795_000_000_000}

    async def post() -> str:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("POST /v1/events", kind=SpanKind.SERVER) as server:
            await producer.send("encore.events", [(b"ana", json.dumps(event).encode())])
            return format(server.get_span_context().trace_id, "032x")

    request_trace = asyncio.run(post())
    producer.close()
    (message,) = producer._producer.messages
    headers = dict(message["headers"])
    assert headers["traceparent"].decode().split("-")[1] == request_trace  # the request's trace id
    publish = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER)
    assert publish.name == "encore.events publish" and hex_ids(publish)[0] == request_trace
    assert headers["traceparent"].decode().split("-")[2] == hex_ids(publish)[1]

    # The flow side: the same message, as the flow's Kafka source hands it over.
    decode = traced_decode(decode_event_message)
    source = KafkaSourceMessage(key=b"ana", value=message["value"], topic="encore.events",
                                headers=message["headers"], partition=1, offset=41,
                                timestamp=(1, 1_795_000_000_500))
    decoded = decode(source)
    assert decoded[0].event_id == "e-1"
    consumer = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER)
    trace_id, _span_id, parent = hex_ids(consumer)
    assert trace_id == request_trace and parent == hex_ids(publish)[1]
    assert consumer.name == "encore.events process"
    assert consumer.attributes["encore.event_id"] == "e-1"
    assert consumer.attributes["messaging.kafka.offset"] == 41
    assert consumer.attributes["messaging.destination.partition.id"] == 1

    # A message that becomes a dead letter: the span says why, as an error.
    bad = KafkaSourceMessage(key=b"ana", value=b"{nope", topic="encore.events", headers=message["headers"],
                             partition=1, offset=42, timestamp=(1, 1_795_000_000_600))
    decode(bad)
    failed = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER][-1]
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes["encore.dead_letter.code"] == "invalid_json"

    # No trace context: no span, the same decoding.
    count = len(spans.get_finished_spans())
    plain = KafkaSourceMessage(key=b"ana", value=message["value"], topic="encore.events", partition=0,
                               offset=1, timestamp=(1, 1_795_000_000_000))
    assert decode(plain)[0].event_id == "e-1"
    assert len(spans.get_finished_spans()) == count


def test_redis_commands_get_spans_under_the_request(spans: Any) -> None:
    import redis
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    traced_app()
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request, pytest.raises(redis.RedisError):
        client.get("some-key")
    redis_spans = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert redis_spans and redis_spans[0].attributes.get("db.system") == "redis"
    assert redis_spans[0].parent.span_id == request.get_span_context().span_id


def test_tracing_off_costs_nothing() -> None:
    """Without tracing configured, no tracer provider is set, no instrumentation is imported, the flow's
    decoder is the plain one, the API has no tracing middleware and the producer adds no headers."""
    script = """
import sys
from encore.settings import Settings
from encore.serve_main import serving_config
from encore.flow_main import flow_config
from encore.tracing import configure_tracing
from flows import dataflow
from flows.decode import decode_event_message
from serving.app import create_app
import serving.producer
s = Settings.from_env({"ENCORE_KAFKA_BOOTSTRAP": "x:1", "ENCORE_REDIS_URL": "redis://x:1/0"})
assert configure_tracing(s, "encore-api") is False
app = create_app(serving_config(s))
assert dataflow._event_decoder(flow_config(s)) is decode_event_message
dataflow.build_flow(flow_config(s))
names = [m.cls.__name__ for m in app.user_middleware]
assert "TracingMiddleware" not in names and names[0] == "RequestIdMiddleware", names
assert serving.producer._tracing is None
from opentelemetry import trace
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"  # no provider: no-op spans
# (redis-py itself imports the OpenTelemetry SDK when it is installed; Encore's tracing is not loaded)
ours = ("opentelemetry.instrumentation", "opentelemetry.exporter", "serving.tracing", "flows.tracing")
loaded = sorted(m for m in sys.modules if m.startswith(ours))
print(loaded)
"""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
