"""One trace from the player to the flow, on the real broker, Redis and `encore flow`:

- the API (in this process, tracing into the in-memory exporter) continues the player's
  `traceparent`: its server span, its producer span and the Redis spans of the next read share the
  player's trace id;
- the event's Kafka message carries that trace context in its headers;
- the flow (a subprocess configured with ENCORE_OTEL_ENDPOINT) exports its span for the event over
  OTLP/HTTP to a receiver in this test: same trace id, child of the API's producer span;
- the flow's JSON logs (ENCORE_LOG_FORMAT=json) hold its dead letters as structured lines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from encore.local import ManagedProcess
from tests.integration.conftest import Env, event, track, wait_for
from tests.tracing_support import OtlpReceiver

pytestmark = pytest.mark.integration

PLAYER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{PLAYER_TRACE}-b7ad6b7169203331-01"


def event_messages(env: Env) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=env.services.bootstrap, consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition(env.topics.events, p)
                      for p in consumer.partitions_for_topic(env.topics.events) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return list(consumer)
    finally:
        consumer.close()


def test_one_trace_from_the_request_through_kafka_to_the_flow(env: Env, spans: Any) -> None:
    import sys

    from opentelemetry.trace import SpanKind

    receiver = OtlpReceiver().start()
    log_path = env.services.workdir / "logs" / f"flow-traced-{env.settings.namespace}.log"
    settings = env.settings.with_(log_format="json", otel_endpoint=f"{receiver.endpoint}/v1/traces",
                                  service_name="encore-flow-test")
    flow = ManagedProcess("flow", [sys.executable, "-m", "encore.cli", "flow"], log_path, env={
        **settings.to_env(), "OTEL_BSP_SCHEDULE_DELAY": "100", "BYTEWAX_DATAFLOW_API_ENABLED": "false",
    }).start()
    try:
        from dataclasses import replace

        from fastapi.testclient import TestClient

        from encore.serve_main import serving_config
        from serving.app import create_app

        with TestClient(create_app(replace(serving_config(env.settings), tracing=True))) as api:
            assert api.post("/v1/tracks", json=[track("tr-1", "rock", 0.9), track("tr-2", "rock", 0.8)]
                            ).status_code == 202
            wait_for(lambda: len(api.app.state.catalog.index) == 2, 60, "the catalog")
            spans.clear()
            response = api.post("/v1/events", json=[event("traced-1", "tom", "tr-1", "like")],
                                headers={"traceparent": TRACEPARENT, "x-request-id": "player-req-1"})
            assert response.status_code == 202 and response.headers["x-request-id"] == "player-req-1"
            server = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
            publish = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER)
            assert format(server.get_span_context().trace_id, "032x") == PLAYER_TRACE
            assert server.attributes["encore.request_id"] == "player-req-1"
            assert publish.parent.span_id == server.get_span_context().span_id
            publish_span_id = format(publish.get_span_context().span_id, "016x")

            # The message in Kafka carries the request's trace context.
            (message,) = [m for m in event_messages(env) if b"traced-1" in m.value]
            traceparent = dict(message.headers)["traceparent"].decode()
            assert traceparent.split("-")[1:3] == [PLAYER_TRACE, publish_span_id]

            # The flow's span, exported over OTLP by the flow process, joins the trace.
            def flow_span_of_the_trace() -> Any:
                return next((s for s in receiver.spans if s.trace_id == PLAYER_TRACE), None)

            flow_span = wait_for(flow_span_of_the_trace, 60, "the flow's span over OTLP")
            assert flow_span.parent_span_id == publish_span_id
            assert flow_span.name == f"{env.topics.events} process"
            assert flow_span.service == "encore-flow-test"
            assert flow_span.attributes["encore.event_id"] == "traced-1"
            assert flow_span.attributes["messaging.kafka.offset"] == message.offset

            # The next read: a server span and Redis spans, in the player's trace again.
            env.wait_for_version("tom", 1)
            spans.clear()
            read_parent = f"00-{PLAYER_TRACE}-{'1' * 16}-01"
            recs = api.get("/v1/users/tom/recommendations", headers={"traceparent": read_parent})
            assert recs.status_code == 200 and recs.json()["profile_version"] == 1
            redis_spans = [s for s in spans.get_finished_spans()
                           if s.kind == SpanKind.CLIENT and s.attributes.get("db.system") == "redis"]
            assert redis_spans, [s.name for s in spans.get_finished_spans()]
            in_trace = [s for s in redis_spans
                        if format(s.get_span_context().trace_id, "032x") == PLAYER_TRACE]
            assert in_trace, [s.name for s in redis_spans]
            # Outside the player's trace only the API's own background work (the item statistics' sync,
            # catalog changes), which may run during the request: root spans, never the request's children.
            assert all(s.parent is None for s in redis_spans if s not in in_trace), \
                [(s.name, s.parent) for s in redis_spans if s not in in_trace]

        # A dead letter, logged by the flow as one JSON line.
        env.produce(env.topics.events, b"not json at all", key="tom")
        env.flush()

        def dead_letter_line() -> dict[str, Any] | None:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("{") and '"dead_letter"' in line:
                    return json.loads(line)
            return None

        line = wait_for(dead_letter_line, 60, "the flow's dead-letter log line")
        assert line["level"] == "WARNING" and line["code"] == "invalid_json"
        assert line["topic"] == env.topics.events and line["value_bytes"] == 15
        assert "not json at all" not in json.dumps(line)  # the raw bytes are never logged
    finally:
        flow.stop()
        receiver.stop()
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    assert parsed and all({"ts", "level", "logger", "message"} <= set(p) for p in parsed)

