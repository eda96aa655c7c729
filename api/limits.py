"""Bounds on what one GraphQL request may cost (tokens, depth, aliases), plus parse caches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from graphql import ASTValidationRule, GraphQLError, OperationDefinitionNode
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)

from media.config import Settings

CACHE_SIZE = 256

ExtensionFactory = Callable[[], SchemaExtension]


def limit_rules(settings: Settings) -> Sequence[type[ASTValidationRule]]:
    """Depth, alias (and introspection) rules, built once so the validation cache can hit."""
    rules: list[type[ASTValidationRule]] = [
        query_depth_limiter.create_validator(settings.graphql_max_depth, should_ignore=None),
        max_aliases.create_validator(settings.graphql_max_aliases),
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)  # __schema and __type; __typename stays
    return tuple(rules)


class OneOperationOrName(SchemaExtension):
    """GraphQL §6.1 GetOperation: several operations and no operationName is a request error.

    Strawberry would otherwise run the first operation (a mutation, possibly)."""

    def on_validate(self) -> Iterator[None]:
        """Refuse before validation and execution when the operation is ambiguous."""
        context = self.execution_context
        document = context.graphql_document
        # Strawberry keeps the client's operationName only here; `operation_name` falls back
        # to the first operation, which is exactly the ambiguity refused below.
        provided = getattr(context, "_provided_operation_name", None)
        if provided is None and document is not None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                context.pre_execution_errors = [
                    GraphQLError(
                        "Must provide operation name if query contains multiple operations."
                    )
                ]
        yield


def limit_extensions(settings: Settings) -> list[ExtensionFactory]:
    """Per-request extension factories enforcing the GraphQL limits of `settings`."""
    rules = list(limit_rules(settings))
    max_tokens = settings.graphql_max_tokens

    def tokens() -> SchemaExtension:
        return MaxTokensLimiter(max_token_count=max_tokens)

    def validation() -> SchemaExtension:
        return AddValidationRules(rules)

    def parser_cache() -> SchemaExtension:
        return ParserCache(maxsize=CACHE_SIZE)

    def validation_cache() -> SchemaExtension:
        return ValidationCache(maxsize=CACHE_SIZE)

    # OneOperationOrName runs after the validation cache, which would overwrite its error.
    return [tokens, parser_cache, validation, validation_cache, OneOperationOrName]
