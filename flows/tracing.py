"""The flow's side of a trace: one CONSUMER span per event that arrives with W3C trace context in its
Kafka headers (the API's producer puts it there when tracing is on, serving/tracing.py), so the
request that posted the event and the flow that applied it are one trace.

The span covers the event's decoding and validation in the flow (`encore.events process`), is a
child of the producer's span, and says where the message sat (topic, partition, offset), how long it
waited in Kafka (`encore.queue_ms`: broker timestamp to pick-up) and what became of it (the event
id, or the dead-letter code as an error status). Only `build_flow` with tracing on wraps the
decoder; messages without a `traceparent` header cost one header scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from flows.dead_letters import DeadLetter

R = TypeVar("R")

_tracer = trace.get_tracer("encore.flow")
_CONTEXT_HEADERS = ("traceparent", "tracestate")


def _trace_context(headers: object) -> dict[str, str] | None:
    if not headers:
        return None
    carrier = {}
    for name, value in headers:  # type: ignore[attr-defined]
        if name in _CONTEXT_HEADERS and value is not None:
            carrier[name] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return carrier if "traceparent" in carrier else None


def traced_decode(decode: Callable[[object], R]) -> Callable[[object], R]:
    """`decode` (flows/decode.py's decode_event_message), with a span per traced message."""

    def decode_traced(item: object) -> R:
        carrier = _trace_context(getattr(item, "headers", None))
        if carrier is None:
            return decode(item)
        attributes: dict[str, str | int | float] = {
            "messaging.system": "kafka", "messaging.operation.type": "process"}
        topic = getattr(item, "topic", None)
        if topic:
            attributes["messaging.destination.name"] = topic
        for name, attribute in (("partition", "messaging.destination.partition.id"),
                                ("offset", "messaging.kafka.offset")):
            value = getattr(item, name, None)
            if value is not None:
                attributes[attribute] = value
        timestamp = getattr(item, "timestamp", None)
        if timestamp is not None and timestamp[1] > 0:
            attributes["encore.queue_ms"] = max(0, int(time.time() * 1000) - timestamp[1])
        with _tracer.start_as_current_span(f"{topic or 'events'} process", context=propagate.extract(carrier),
                                           kind=SpanKind.CONSUMER, attributes=attributes) as span:
            result = decode(item)
            if isinstance(result, DeadLetter):
                span.set_attribute("encore.dead_letter.code", result.code)
                span.set_status(Status(StatusCode.ERROR, result.reason[:200]))
            elif isinstance(result, tuple) and result:
                event = result[0]
                span.set_attribute("encore.event_id", getattr(event, "event_id", ""))
                span.set_attribute("encore.event_type", str(getattr(event, "type", "")))
            return result

    return decode_traced
