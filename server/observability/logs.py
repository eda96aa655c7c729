"""Log output: plain text or one JSON object per line, both with request and trace ids.

Every line carries the request id (and the trace id when tracing is on) of the request it was
written for. Messages are formatted by their callers, which never pass a token: request lines name
route templates, not paths.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from media.telemetry import request
from media.telemetry.tracing import current_tracer

# Fields of the request log line (server.request_log), renamed where JSON wants clearer keys.
_REQUEST_FIELDS = {"method": "method", "route": "route", "status": "status", "bytes": "bytes"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def current_ids() -> dict[str, str]:
    """request_id, trace_id and span_id of the current context, those that exist."""
    ids: dict[str, str] = {}
    facts = request.current()
    if facts is not None:
        ids["request_id"] = facts.request_id
    if current_tracer() is not None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            ids["trace_id"] = format(context.trace_id, "032x")
            ids["span_id"] = format(context.span_id, "016x")
    return ids


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, logger, message, ids, request fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **current_ids(),
        }
        fields = getattr(record, "media_request", None)
        if isinstance(fields, dict):
            line["message"] = "request"  # the fields below say the rest
            line.update({key: fields[name] for name, key in _REQUEST_FIELDS.items()})
            line["duration_ms"] = fields.get("ms")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """The plain format, with the request and trace ids appended when there are any."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The record as text."""
        text = super().format(record)
        ids = current_ids()
        ids.pop("span_id", None)
        if not ids:
            return text
        suffix = " ".join(f"{key}={value}" for key, value in ids.items())
        head, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{head} {suffix}{newline}{rest}"


def log_formatter(log_format: str) -> logging.Formatter:
    """The formatter of MEDIA_LOG_FORMAT (`text` or `json`)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()
