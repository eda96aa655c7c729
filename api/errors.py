"""The one place where core errors become GraphQL error codes and transport responses."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError, VariableDefinitionNode
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException as LitestarHTTPException
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.utils.str_converters import to_camel_case

from api.context import request_id
from media.errors import MediaError

logger = logging.getLogger("media.api")

INTERNAL = "INTERNAL"
INTERNAL_MESSAGE = "Internal server error"
MAX_MESSAGE_LENGTH = 300
# graphql-core appends " Did you mean 'subject'?" to validation errors: a map of the schema.
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")

# Fixed messages where the detail could name a host, key or signature check.
_FIXED_MESSAGES = {
    "UNAUTHENTICATED": "Authentication required or the bearer token is not valid",
    "FORBIDDEN": "Not allowed for this caller",
    "NOT_FOUND": "Not found",
    "UNAVAILABLE": "A dependency is unavailable; retry later",
}

# The core names a field as its own attribute (`size_bytes`); GraphQL as the schema does: in
# camelCase, and the listing filter's dates as their input fields.
_FIELD_NAMES = {"date_from": "mediaDateFrom", "date_to": "mediaDateTo"}


def graphql_field(name: str) -> str:
    """The schema's name of a field a core error names."""
    return _FIELD_NAMES.get(name) or to_camel_case(name)


# RFC 6750 §3: the refusal reasons a client can act on; every other one reads "invalid".
_TOKEN_REASONS = {
    "missing": "missing",
    "malformed": "malformed",
    "too_long": "malformed",
    "missing_kid": "malformed",
    "unsupported_crit": "malformed",
    "alg_not_allowed": "malformed",
    "expired": "expired",
    "unknown_kid": "unknown_key",
    "wrong_issuer": "wrong_issuer",
    "wrong_audience": "wrong_audience",
    "not_yet_valid": "not_yet_valid",
    "issued_in_future": "not_yet_valid",
}


def token_reason(exc: MediaError) -> str:
    """Why a bearer token was refused, in the words of the public contract."""
    return _TOKEN_REASONS.get(str(exc.data.get("reason", "")), "invalid")


def error_code(exc: BaseException) -> str:
    """The `extensions.code` of an exception; INTERNAL for anything unexpected."""
    # Each MediaError class carries its code (media/errors.py); bugs never reach clients.
    if isinstance(exc, MediaError) and exc.expected:
        return exc.code
    return INTERNAL


def error_message(exc: MediaError, code: str) -> str:
    """A message safe to show: fixed for sensitive codes, the short detail otherwise."""
    fixed = _FIXED_MESSAGES.get(code)
    if fixed is not None:
        return fixed
    return (exc.message(graphql_field) or code.replace("_", " ").lower())[:MAX_MESSAGE_LENGTH]


def error_extensions(exc: MediaError, code: str) -> dict[str, Any]:
    """`code` plus the allow-listed data a client can act on (`field`, `limit`)."""
    extensions: dict[str, Any] = {"code": code}
    field = exc.data.get("field")
    if isinstance(field, str):
        extensions["field"] = graphql_field(field)
    limit = exc.data.get("limit")
    if isinstance(limit, int | float) and not isinstance(limit, bool):
        extensions["limit"] = limit
    if code == "UNAUTHENTICATED":
        extensions["reason"] = token_reason(exc)
    return extensions


def _original(error: GraphQLError) -> BaseException | None:
    original: BaseException | None = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    return original


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors that must be masked and logged: not ours, not a request error."""
    original = _original(error)
    if isinstance(original, MediaError):
        return error_code(original) == INTERNAL
    if error.path is None:
        # Parse, validation and variable-coercion errors name the caller's mistake.
        return original is not None and not isinstance(original, GraphQLError | ValueError)
    return True


def format_error(error: GraphQLError, ident: str, *, suggestions: bool = True) -> GraphQLError:
    """The client-facing version of one error, with `extensions.code` (and no field-name
    suggestions unless `suggestions`)."""
    original = _original(error)
    if is_unexpected(error):
        message, extensions = INTERNAL_MESSAGE, {"code": INTERNAL, "requestId": ident}
    elif isinstance(original, MediaError):
        code = error_code(original)
        message, extensions = error_message(original, code), error_extensions(original, code)
    else:
        message, extensions = error.message, {"code": _request_error_code(error, original)}
        if not suggestions:
            message = _SUGGESTION.sub("", message)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def _request_error_code(error: GraphQLError, original: BaseException | None) -> str:
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    # Variable values that do not coerce are located at their variable definition.
    if isinstance(original, ValueError) or any(
        isinstance(node, VariableDefinitionNode) for node in error.nodes or ()
    ):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def context_request_id(execution_context: ExecutionContext | None) -> str:
    """The request id carried by the GraphQL context, or '-' outside a request."""
    context = getattr(execution_context, "context", None)
    return str(getattr(context, "request_id", "-"))


def log_unexpected(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log every error that will be masked, with its trace and the request id."""
    ident = context_request_id(execution_context)
    for error in errors:
        if is_unexpected(error):
            original = _original(error) or error
            logger.error(
                "unexpected GraphQL error at %s (request %s)",
                ".".join(str(part) for part in error.path or ()) or "-",
                ident,
                exc_info=(type(original), original, original.__traceback__),
            )


def format_errors(
    errors: list[GraphQLError], ident: str, *, suggestions: bool = True
) -> list[GraphQLError]:
    """Format every error not formatted yet (those without `extensions.code`)."""
    return [
        error
        if (error.extensions or {}).get("code")
        else format_error(error, ident, suggestions=suggestions)
        for error in errors
    ]


class ErrorCodes(SchemaExtension):
    """Rewrites every error of a result: codes for ours, a masked INTERNAL for the rest."""

    def __init__(self, *, suggestions: bool = True) -> None:
        self.suggestions = suggestions

    def on_operation(self) -> Iterator[None]:
        """Let the operation run, then rewrite its errors."""
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            ident = context_request_id(self.execution_context)
            result.errors = format_errors(errors, ident, suggestions=self.suggestions)


def graphql_error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    """A GraphQL-shaped body for failures that happen before execution."""
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


def transport_response(
    status: int,
    message: str,
    code: str,
    ident: str,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    """A JSON response with a GraphQL-shaped body and the request id."""
    extra = {"requestId": ident} if code == INTERNAL else dict(extensions or {})
    return Response(
        graphql_error_body(message, code, **extra),
        status_code=status,
        media_type=MediaType.JSON,
        headers={"X-Request-Id": ident, "Cache-Control": "no-store", **(headers or {})},
    )


def media_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar handler: a core error raised before execution (authentication, dependency)."""
    ident = request_id(request)
    code = error_code(exc)
    if code == INTERNAL:
        return internal_error_response(request, exc)
    assert isinstance(exc, MediaError)
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {}
    if code == "UNAUTHENTICATED":
        # RFC 6750 §3: the challenge says why, so a person can fix the token.
        reason = token_reason(exc)
        description = reason.replace("_", " ")
        headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{description}"'
        )
        extensions["reason"] = reason
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    message = error_message(exc, code)
    return transport_response(exc.status_code, message, code, ident, headers, extensions)


_TRANSPORT_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def http_status_response(status: int, reason: str, ident: str) -> Response[dict[str, Any]]:
    """An HTTP-level refusal (before execution) with a GraphQL-shaped body."""
    if status >= 500:
        return transport_response(status, INTERNAL_MESSAGE, INTERNAL, ident)
    # GraphQL over HTTP §GET: a mutation over GET gets 405 and a pointer to POST.
    headers = {"Allow": "POST"} if status == 405 else {}
    code = _TRANSPORT_CODES.get(status, "BAD_REQUEST")
    return transport_response(status, reason[:MAX_MESSAGE_LENGTH], code, ident, headers)


def http_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar handler: its HTTP errors (body too large, bad Content-Length) as GraphQL JSON."""
    assert isinstance(exc, LitestarHTTPException)
    return http_status_response(exc.status_code, str(exc.detail), request_id(request))


def internal_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar handler: anything unexpected, logged with the request id and masked."""
    ident = request_id(request)
    logger.error("unexpected error before GraphQL execution (request %s)", ident, exc_info=exc)
    return transport_response(500, INTERNAL_MESSAGE, INTERNAL, ident)
