"""Logging for every Encore process: readable lines (`ENCORE_LOG_FORMAT=text`, the default) or one
JSON object per line (`json`), for log shippers.

A JSON line holds `ts` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`, the process tag
(`process`, e.g. `flow[1]`) when there is one, `trace_id` / `span_id` when a span is current
(tracing on), the traceback as `exc` when there is one, and every field a caller passed with
`extra=` (the API's access log: `request_id`, `method`, `route`, `status`, `latency_ms`; the flow's
batch summaries and dead letters: counts, partition, offset, reason, ...).

>>> import io
>>> stream = io.StringIO()
>>> handler = logging.StreamHandler(stream)
>>> handler.setFormatter(JsonFormatter(tag="api"))
>>> demo = logging.getLogger("encore.demo")
>>> demo.addHandler(handler); demo.propagate = False
>>> demo.warning("request %s", "done", extra={"status": 200, "latency_ms": 1.5})
>>> line = json.loads(stream.getvalue())
>>> line["message"], line["level"], line["status"], line["latency_ms"], line["process"]
('request done', 'WARNING', 200, 1.5, 'api')
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message", "asctime", "taskName", "color_message"}
"""LogRecord attributes that are not a caller's `extra=` fields."""

NOISY = ("kafka", "httpx", "httpcore")
"""Client libraries that narrate every connection at INFO: only their warnings are kept."""

current_trace_ids: Callable[[], tuple[str, str] | None] = lambda: None  # noqa: E731
"""(trace id, span id) of the current span, set by `encore.tracing` when tracing is on."""


def _json_default(value: object) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _encodable(value: object) -> object:
    try:
        json.dumps(value, default=_json_default)
    except (TypeError, ValueError):
        return str(value)
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, tag: str = "") -> None:
        super().__init__()
        self._tag = tag

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self._tag:
            entry["process"] = self._tag
        ids = current_trace_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(entry, default=_json_default, ensure_ascii=False)
        except (TypeError, ValueError):  # e.g. a dict with tuple keys: never lose the line
            return json.dumps({k: _encodable(v) for k, v in entry.items()}, default=_json_default,
                              ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Time, level, process tag, logger, message, then the `extra=` fields as key=value."""

    def __init__(self, tag: str = "") -> None:
        prefix = f"{tag} " if tag else ""
        super().__init__(f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [f"{k}={v}" for k, v in record.__dict__.items()
                  if k not in _STANDARD and not k.startswith("_")]
        return f"{text} [{' '.join(fields)}]" if fields else text


def configure_logging(level: str, tag: str = "", log_format: str = "text",
                      stream: Any = None) -> None:
    """Log `log_format` lines to stderr (or `stream`) from the root logger. Like
    `logging.basicConfig`, it leaves a root logger that already has handlers of someone else's
    (a test runner's) alone; a handler of an earlier call is replaced."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_encore", False)]:
        root.removeHandler(old)
    if not root.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter(tag) if log_format == "json" else TextFormatter(tag))
        handler._encore = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # uvicorn's loggers (run with log_config=None) go through this handler too.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
