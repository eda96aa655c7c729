"""The GraphQL schema: roots, limits, error codes; and its SDL for schema.graphql."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError

from api.errors import ErrorCodes, format_errors, log_unexpected
from api.execution import ExecutionContext as LeafExecutionContext
from api.execution import direct_resolvers
from api.limits import limit_extensions
from api.mutations import Mutation
from api.queries import Query
from api.subscriptions import Subscription
from api.tracing import OperationSpan
from media.config import Settings


class MediaSchema(strawberry.Schema):
    """The schema; logs only errors that are masked, each with its request id."""

    async def stream(self, *args: Any, **kwargs: Any) -> StreamResult:
        """Streamed results (subscriptions over WebSocket and SSE) get the same error codes
        as HTTP answers: the ErrorCodes extension sees only the end of a stream."""
        source = await super().stream(*args, **kwargs)
        ident = str(getattr(kwargs.get("context_value"), "request_id", "-"))
        return _with_error_codes(source, ident)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors; expected ones are the caller's business, not the log's."""
        log_unexpected(errors, execution_context)


async def _with_error_codes(source: StreamResult, ident: str) -> AsyncGenerator[Any, None]:
    async with aclosing(source):
        try:
            async for result in source:
                if isinstance(result, ExecutionResult) and result.errors:
                    result.errors = format_errors(result.errors, ident)
                yield result
        except GraphQLError as error:
            # A parse or token-limit error, raised by the parser cache or the token limiter
            # before any result: the caller's error, answered like over HTTP, never a crash.
            yield PreExecutionError(data=None, errors=format_errors([error], ident))


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with the limits of `settings`."""

    def error_codes() -> SchemaExtension:
        # Suggestions reveal field names just as introspection does: one setting for both.
        return ErrorCodes(suggestions=settings.introspection)

    schema = MediaSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        execution_context_class=LeafExecutionContext,
        extensions=[
            *([OperationSpan] if settings.tracing_enabled else []),
            *limit_extensions(settings),
            error_codes,
        ],
    )
    direct_resolvers(schema)
    return schema


def default_settings() -> Settings:
    """Settings with every default; the SDL does not depend on them."""
    return Settings(
        data_dir=Path("."), database_url="sqlite:////unused", storage_url="file:///unused"
    )


def schema_sdl() -> str:
    """The SDL of the schema built with default settings, ending in a newline."""
    return build_schema(default_settings()).as_str().rstrip("\n") + "\n"
