"""Spans of the core through the OpenTelemetry API; nothing at all while tracing is off.

The composition root hands in a tracer when an exporter is configured (`use_tracer`). Until then
`span()` is a shared no-op context, so storage, database and processing code pay one call and one
comparison. Spans never record exception messages (they can quote a token); only the type.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

Attributes = Mapping[str, str | int | float | bool]

_state: dict[str, Tracer | None] = {"tracer": None}
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


def use_tracer(tracer: Tracer | None) -> None:
    """Turn spans on (a tracer) or off (None) for this process."""
    _state["tracer"] = tracer


def current_tracer() -> Tracer | None:
    """The tracer in use, or None while tracing is off."""
    return _state["tracer"]


def span(name: str, attributes: Attributes | None = None) -> contextlib.AbstractContextManager[Any]:
    """A current child span named `name` around a block; a no-op while tracing is off."""
    tracer = _state["tracer"]
    if tracer is None:
        return _NOTHING
    return _current_span(tracer, name, attributes)


@contextlib.contextmanager
def _current_span(tracer: Tracer, name: str, attributes: Attributes | None) -> Iterator[Span]:
    with tracer.start_as_current_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            mark_failed(current, exc)
            raise


def start_span(name: str, attributes: Attributes | None = None) -> Span | None:
    """A child span that is not made current (for work spread over several awaits), or None."""
    tracer = _state["tracer"]
    if tracer is None:
        return None
    return tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)


def mark_failed(current: Span, exc: BaseException) -> None:
    """Error status naming only the exception type: messages may quote tokens or paths."""
    kind = type(exc).__name__
    current.set_attribute("error.type", kind)
    current.set_status(Status(StatusCode.ERROR, kind))
