"""Request ids and the API's access log.

Every request gets an id: the caller's `X-Request-ID` when it is a sane one (1-128 characters of
letters, digits and `-_.:/+=@`), else a new one (32 hex digits). The id is echoed in the response's
`X-Request-ID`, set on the request's span when tracing is on, attached to every log line written
while the request runs (the `request_id` field), and ends up in the access log: one line per
request with `request_id`, `method`, `route` (the template, e.g. `/v1/users/{user_id}/recommendations`,
so user ids stay out of the logs), `status` and `latency_ms`, on the `encore.access` logger
(`ENCORE_ACCESS_LOG=off` turns it off). Query strings, bodies and headers are never logged.

A plain ASGI middleware: no extra task per request.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.config import ServingConfig

access_log = logging.getLogger("encore.access")

HEADER = b"x-request-id"
MAX_LENGTH = 128
_VALID = re.compile(rb"[A-Za-z0-9\-_.:/+=@]{1,128}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("encore_request_id", default=None)
"""The id of the request being handled (None outside a request)."""


def current_request_id() -> str | None:
    return request_id_var.get()


def accepted_request_id(raw: bytes | None) -> str | None:
    """The caller's id if it may be used as it is, else None (a new one is made).

    >>> accepted_request_id(b"req-42"), accepted_request_id(b"a b"), accepted_request_id(b"x" * 129)
    ('req-42', None, None)
    >>> accepted_request_id(b"\\xff\\n"), accepted_request_id(b""), accepted_request_id(None)
    (None, None, None)
    """
    if raw is None or len(raw) > MAX_LENGTH or not _VALID.fullmatch(raw):
        return None
    return raw.decode("ascii")


def new_request_id() -> str:
    return uuid.uuid4().hex


def _install_record_factory() -> None:
    """Every log record written during a request carries its `request_id` (so no caller passes
    `request_id` in `extra=`: logging refuses to overwrite it)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_encore_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return record

    factory._encore_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, log_requests: bool = True,
                 on_request_id: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.log_requests = log_requests
        self.on_request_id = on_request_id
        """Called with the id (tracing sets it on the request's span)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope.get("headers", ()) if name == HEADER), None)
        request_id = accepted_request_id(given) or new_request_id()
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        if self.on_request_id is not None:
            self.on_request_id(request_id)
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*(h for h in message.get("headers", []) if h[0].lower() != HEADER),
                                      header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.log_requests:
                latency_ms = round((time.perf_counter() - started) * 1000, 3)
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope.get("method", "")
                # `request_id` comes from the record factory (the context variable is still set).
                access_log.info("%s %s %d %.1fms", method, route, status, latency_ms, extra={
                    "method": method, "route": route, "status": status, "latency_ms": latency_ms})
            request_id_var.reset(token)


def install_request_log(app: FastAPI, config: ServingConfig) -> None:
    """Request ids, the access log and, when tracing is configured, the server spans: call it after
    every other middleware is added, so these wrap them all (a 413 or a CORS refusal is logged too)."""
    _install_record_factory()
    on_request_id = None
    if config.tracing:
        from serving.tracing import install_tracing, tag_request

        on_request_id = tag_request
        app.add_middleware(RequestIdMiddleware, log_requests=config.access_log, on_request_id=on_request_id)
        install_tracing(app)  # outermost: the span is current while the id is set and logged
        return
    app.add_middleware(RequestIdMiddleware, log_requests=config.access_log)
