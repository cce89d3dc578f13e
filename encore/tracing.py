"""OpenTelemetry set-up for the API and the flow: a tracer provider exporting over OTLP/HTTP when
tracing is configured (`ENCORE_OTEL_ENDPOINT`, or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), nothing at all when it is not: the OpenTelemetry packages (the
`otel` extra) are then not even imported.

The instrumentation itself lives with what it instruments: serving/tracing.py (server spans, Redis,
the producer's trace-context headers) and flows/tracing.py (the flow's span per traced event).
Spans are batched (`BatchSpanProcessor`; `OTEL_BSP_*` tune it) and flushed at exit.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

from encore.settings import Settings, SettingsError

log = logging.getLogger(__name__)

_provider: Any = None


def configure_tracing(settings: Settings, default_service: str, exporter: Any = None) -> bool:
    """Install the tracer provider; returns whether tracing is on. `exporter` (tests: an
    InMemorySpanExporter) replaces the OTLP one and is flushed span by span."""
    global _provider
    if not settings.otel_endpoint and exporter is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        raise SettingsError("tracing is configured (ENCORE_OTEL_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT) "
                            "but OpenTelemetry is not installed: pip install 'encore[otel]'") from None
    if _provider is not None:  # once per process: a later exporter (a test's) is added to it
        if exporter is not None:
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
        return True
    provider = TracerProvider(resource=Resource.create({
        "service.name": settings.service_name or default_service,
        "service.namespace": settings.namespace}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint)))
        atexit.register(provider.shutdown)
    trace.set_tracer_provider(provider)
    _provider = provider
    _log_trace_ids(trace)
    log.info("tracing on: spans of %s go to %s", settings.service_name or default_service,
             settings.otel_endpoint or type(exporter).__name__)
    return True


def _log_trace_ids(trace: Any) -> None:
    """JSON log lines written inside a span carry its trace and span ids (encore/logs.py)."""
    from encore import logs

    def current() -> tuple[str, str] | None:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")

    logs.current_trace_ids = current
