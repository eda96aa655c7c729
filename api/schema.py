"""The GraphQL schema: roots, limits, error codes; and its SDL for schema.graphql."""

from __future__ import annotations

from pathlib import Path

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from api.errors import ErrorCodes, log_unexpected
from api.limits import limit_extensions
from api.mutations import Mutation
from api.queries import Query
from api.tracing import OperationSpan
from media.config import Settings


class MediaSchema(strawberry.Schema):
    """The schema; logs only errors that are masked, each with its request id."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors; expected ones are the caller's business, not the log's."""
        log_unexpected(errors, execution_context)


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema with the limits of `settings`."""

    def error_codes() -> SchemaExtension:
        # Suggestions reveal field names just as introspection does: one setting for both.
        return ErrorCodes(suggestions=settings.introspection)

    return MediaSchema(
        query=Query,
        mutation=Mutation,
        extensions=[
            *([OperationSpan] if settings.tracing_enabled else []),
            *limit_extensions(settings),
            error_codes,
        ],
    )


def default_settings() -> Settings:
    """Settings with every default; the SDL does not depend on them."""
    return Settings(
        data_dir=Path("."), database_url="sqlite:////unused", storage_url="file:///unused"
    )


def schema_sdl() -> str:
    """The SDL of the schema built with default settings, ending in a newline."""
    return build_schema(default_settings()).as_str().rstrip("\n") + "\n"
