"""The API's OpenTelemetry instrumentation, on only when tracing is configured (`ENCORE_OTEL_ENDPOINT`
or `OTEL_EXPORTER_OTLP_ENDPOINT`; `encore/tracing.py` sets up the exporter). When it is off, this
module is not even imported: nothing is added to a request's path.

- a SERVER span per request (`GET /v1/users/{user_id}/recommendations`), continuing the caller's
  trace when it sends W3C `traceparent`, with the route, status and `encore.request_id`;
- a CLIENT span per Redis command or pipeline (opentelemetry-instrumentation-redis);
- a PRODUCER span per write to Kafka (`encore.events publish`) whose context is carried to the
  flow in every message's headers (`traceparent`, `tracestate`), so the flow's span for the event
  (flows/tracing.py) joins the request's trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_tracer = trace.get_tracer("encore.api")
_enabled = False


def enabled() -> bool:
    return _enabled


class TracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", ())
                   if name in (b"traceparent", b"tracestate")}
        parent = propagate.extract(carrier) if carrier else None
        method = scope.get("method", "")
        span = _tracer.start_span(method, context=parent, kind=SpanKind.SERVER, attributes={
            "http.request.method": method, "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1")})
        token = context.attach(trace.set_span_in_context(span))
        status = 500

        async def send_traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            context.detach(token)
            span.end()


def tag_request(request_id: str) -> None:
    """Put the request id on the request's span (called by serving/request_log.py)."""
    trace.get_current_span().set_attribute("encore.request_id", request_id)


class KafkaTracing:
    """serving/producer.py's MessageTracing: a PRODUCER span, and its context in the headers."""

    def span(self, topic: str, messages: int) -> contextlib.AbstractContextManager[Span | None]:
        return producer_span(topic, messages)

    def headers(self) -> list[tuple[str, bytes]] | None:
        return kafka_headers()


def install_tracing(app: FastAPI) -> None:
    global _enabled
    from serving.producer import set_message_tracing

    # FastAPI >= 0.16x makes server spans of its own once a tracer provider is set: one SERVER span
    # per request is ours (the same on every FastAPI version, with the request id), so turn its off.
    native = getattr(app, "_telemetry", None)
    if isinstance(native, dict):
        native["tracing"] = False
    app.add_middleware(TracingMiddleware)
    set_message_tracing(KafkaTracing())
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    _enabled = True


def uninstall_tracing() -> None:
    """Undo install_tracing's process-wide parts (Redis instrumentation, producer headers): tests."""
    global _enabled
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    from serving.producer import set_message_tracing

    if RedisInstrumentor().is_instrumented_by_opentelemetry:
        RedisInstrumentor().uninstrument()
    set_message_tracing(None)
    _enabled = False


@contextlib.contextmanager
def producer_span(topic: str, messages: int) -> Iterator[Span | None]:
    """A PRODUCER span around one acknowledged write of `messages` messages (nothing when off)."""
    if not _enabled:
        yield None
        return
    with _tracer.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER, attributes={
            "messaging.system": "kafka", "messaging.destination.name": topic,
            "messaging.operation.type": "send", "messaging.batch.message_count": messages}) as span:
        yield span


def kafka_headers() -> list[tuple[str, bytes]] | None:
    """The current trace context as Kafka message headers (None when tracing is off)."""
    if not _enabled:
        return None
    carrier: dict[str, Any] = {}
    propagate.inject(carrier)
    return [(name, str(value).encode()) for name, value in carrier.items()] or None
