"""Bounds on what one GraphQL request may cost (tokens, depth, aliases), plus parse caches."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from graphql import ASTValidationRule
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
from media.service import MAX_PAGE_SIZE

__all__ = ["MAX_PAGE_SIZE", "limit_extensions"]

CACHE_SIZE = 256

ExtensionFactory = Callable[[], SchemaExtension]


def limit_rules(settings: Settings) -> Sequence[type[ASTValidationRule]]:
    """Depth and alias validation rules, built once so the validation cache can hit."""
    return (
        query_depth_limiter.create_validator(settings.graphql_max_depth, should_ignore=None),
        max_aliases.create_validator(settings.graphql_max_aliases),
    )


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

    return [tokens, validation, parser_cache, validation_cache]
