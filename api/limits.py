"""Bounds on what one GraphQL request may cost (tokens, depth, aliases, objects listed), plus parse
caches."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

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
from media.errors import TooLarge

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


@dataclass(slots=True)
class _Budget:
    limit: int
    used: int = 0


# The budget of the operation being executed: set per operation, in the task that runs it (an
# HTTP request, or one operation of a WebSocket), and seen by the tasks it starts.
_BUDGET: ContextVar[_Budget | None] = ContextVar("graphql_node_budget", default=None)


class NodeBudget(SchemaExtension):
    """MEDIA_GRAPHQL_MAX_NODES: how many objects the list fields of one operation may return.

    Aliases, pages and the media of share links all add up, so one request of a few tokens
    cannot make the server build and sign URLs for hundreds of thousands of media. Counted as
    the lists resolve: a request refused is one that really is that large."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit

    def on_operation(self) -> Iterator[None]:
        """A fresh budget for each operation."""
        _BUDGET.set(_Budget(self._limit))
        yield


def listing(count: int) -> None:
    """A list field returns `count` more objects: TooLarge past the operation's budget."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.used += count
    if budget.used > budget.limit:
        raise TooLarge(
            f"the request lists more than {budget.limit} objects; ask for fewer"
            " (a smaller first, fewer aliases)",
            limit=budget.limit,
        )


def limit_extensions(settings: Settings) -> list[ExtensionFactory]:
    """Per-request extension factories enforcing the GraphQL limits of `settings`."""
    rules = list(limit_rules(settings))
    max_tokens = settings.graphql_max_tokens
    max_nodes = settings.graphql_max_nodes

    def tokens() -> SchemaExtension:
        return MaxTokensLimiter(max_token_count=max_tokens)

    def validation() -> SchemaExtension:
        return AddValidationRules(rules)

    def parser_cache() -> SchemaExtension:
        return ParserCache(maxsize=CACHE_SIZE)

    def validation_cache() -> SchemaExtension:
        return ValidationCache(maxsize=CACHE_SIZE)

    def node_budget() -> SchemaExtension:
        return NodeBudget(limit=max_nodes)

    # OneOperationOrName runs after the validation cache, which would overwrite its error.
    return [tokens, parser_cache, validation, validation_cache, OneOperationOrName, node_budget]
