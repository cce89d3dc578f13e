"""Shared by the tracing tests: one in-memory span exporter for the test process (OpenTelemetry's
tracer provider can be set once per process), and a small OTLP/HTTP receiver that collects what a
subprocess (the flow) exports."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from encore.settings import Settings
from encore.tracing import configure_tracing


@pytest.fixture
def spans() -> Iterator[Any]:
    """An InMemorySpanExporter receiving every span of this process while the test runs; the API's
    process-wide instrumentation (Redis, producer headers) is undone afterwards."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    assert configure_tracing(Settings(), "encore-test", exporter=exporter)
    try:
        yield exporter
    finally:
        from serving.tracing import uninstall_tracing

        uninstall_tracing()
        exporter.shutdown()


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    service: str


@dataclass
class OtlpReceiver:
    """Accepts OTLP/HTTP protobuf exports on POST /v1/traces (127.0.0.1, a free port)."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    _server: ThreadingHTTPServer | None = None

    def start(self) -> OtlpReceiver:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.collect(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True).start()
        return self

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def collect(self, request: Any) -> None:
        self.requests += 1
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {}
                    for attribute in span.attributes:
                        value = attribute.value
                        attributes[attribute.key] = getattr(value, value.WhichOneof("value"))
                    self.spans.append(ReceivedSpan(span.name, span.trace_id.hex(), span.span_id.hex(),
                                                   span.parent_span_id.hex(), span.kind, attributes,
                                                   span.status.code, service))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
