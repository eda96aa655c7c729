"""The per-request GraphQL context: the service, the verified caller and a request id."""

from __future__ import annotations

import re
import uuid
from typing import Any

import strawberry
from litestar.connection import ASGIConnection
from strawberry.litestar import BaseContext

from media.errors import Unauthenticated
from media.models import Principal
from media.service import MediaService

# Accept a caller's request id only when it is short and plain, so it is safe to log and echo.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class GraphQLContext(BaseContext, kw_only=True):
    """What every resolver sees: one service and one principal for the whole request."""

    service: MediaService
    caller: Principal
    request_id: str
    # graphql-transport-ws: the payload of connection_init, where the bearer token travels.
    connection_params: dict[str, object] | None = None

    @property
    def principal(self) -> Principal:
        """The caller, as long as its token is valid (`check_caller`)."""
        self.check_caller()
        return self.caller

    def check_caller(self) -> None:
        """Unauthenticated once the caller's token has expired. A WebSocket, one context for
        the whole connection, outlives its token: no operation or event is served after."""
        until = self.caller.valid_until
        if until is not None and self.service.parts.clock().timestamp() > until:
            raise Unauthenticated("the token has expired", reason="expired")


Info = strawberry.Info[GraphQLContext, None]


def request_id(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The id that ties this request's log lines and masked errors together (stable per request)."""
    value = request.state.get("request_id")
    if isinstance(value, str):
        return value
    value = accept_request_id(request.headers.get("x-request-id")) or uuid.uuid4().hex
    request.state["request_id"] = value
    return value


def authorization(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The one Authorization field value; several field lines are a malformed request."""
    values = request.headers.getall("authorization", [])
    if len(values) > 1:
        # Which one would count differs between proxies and frameworks: refuse them all.
        raise Unauthenticated("several Authorization headers", reason="malformed")
    return values[0] if values else None


def accept_request_id(offered: str | None) -> str | None:
    """A caller's X-Request-ID when it is safe to log and echo, else None."""
    return offered if offered is not None and _REQUEST_ID.match(offered) else None


# Typed as ASGIConnection: Strawberry's controller also resolves it for its WebSocket route.
async def get_context(
    request: ASGIConnection[Any, Any, Any, Any], service: MediaService
) -> GraphQLContext:
    """A Litestar dependency that authenticates the caller once per request."""
    ident = request_id(request)
    # Raises Unauthenticated or Unavailable; the controller turns them into 401 / 503.
    principal = await service.authenticator.authenticate(authorization(request))
    return GraphQLContext(service=service, caller=principal, request_id=ident)
