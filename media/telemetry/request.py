"""Facts about the request being served, shared by the HTTP edge, the core and the log format.

The edge starts each request with fresh facts (`begin`), so nothing leaks from one request to the
next; the core only notes what it learns (the purpose of the signed URL it served). One context
variable per request: it follows the request's task.
"""

from __future__ import annotations

from contextvars import ContextVar, Token


class RequestFacts:
    """The request id and, once known, the purpose of the signed URL served."""

    __slots__ = ("purpose", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.purpose: str | None = None


_FACTS: ContextVar[RequestFacts | None] = ContextVar("media_request_facts", default=None)


def begin(request_id: str) -> tuple[RequestFacts, Token[RequestFacts | None]]:
    """Start a request; pass the token to `end`."""
    facts = RequestFacts(request_id)
    return facts, _FACTS.set(facts)


def end(token: Token[RequestFacts | None]) -> None:
    """Forget the request's facts."""
    _FACTS.reset(token)


def current() -> RequestFacts | None:
    """The facts of the request being served, if any."""
    return _FACTS.get()


def note_purpose(purpose: str) -> None:
    """The signed URL being served is for `purpose` (stream, download, thumbnail, ...)."""
    facts = _FACTS.get()
    if facts is not None:
        facts.purpose = purpose
