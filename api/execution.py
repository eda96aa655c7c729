"""Query execution with a short path for plain leaf fields (bench/README.md, GraphQL page).

A page of 100 media with every field is ~2,500 fields; for most of them graphql-core builds a
resolve-info object, calls Strawberry's basic-field resolver (an attribute read), checks the
result for awaitables twice and walks the generic completion to reach `coerce_output_value`.
Here a field that Strawberry resolves as a plain attribute (no resolver, no extensions, no
arguments) of a scalar or enum type is read and coerced directly. Anything unusual on that path
(null for a non-null field, a value the scalar refuses, an exception) goes through the general
path again, which raises and reports exactly as before: the result is the same, only cheaper.
"""

from __future__ import annotations

from typing import Any, Final

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# Where a schema keeps its plans, in its `extensions`: id(field definition) -> (the definition,
# kept alive so the id is not reused; its plan or None). Held by the schema, the plans go with it:
# a module-level table would keep every schema ever built alive through the fields' resolvers.
PLANS_KEY: Final = "media.leaf_plans"
_MISSING: Final = object()


class _Leaf:
    """How to read one plain leaf field: the attribute Strawberry would read (when it reads with
    plain `getattr`, its default) or else its resolver, and the scalar or enum to coerce with."""

    __slots__ = ("attribute", "leaf", "nullable", "resolve")

    def __init__(
        self, resolve: Any, attribute: str | None, leaf: GraphQLLeafType, *, nullable: bool
    ) -> None:
        self.resolve = resolve
        self.attribute = attribute
        self.leaf = leaf
        self.nullable = nullable


def _plan(field: GraphQLField) -> _Leaf | None:
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return None  # a resolver of ours, or graphql-core's own default: the general path
    declared = field.type
    nullable = not isinstance(declared, GraphQLNonNull)
    kind = declared.of_type if isinstance(declared, GraphQLNonNull) else declared
    if not isinstance(kind, GraphQLScalarType | GraphQLEnumType):
        return None
    definition = field.extensions.get("strawberry-definition")
    plain = getattr(definition, "default_resolver", None) is getattr
    attribute = definition.python_name if plain else None  # type: ignore[union-attr]
    return _Leaf(resolve, attribute, kind, nullable=nullable)


class ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context with the plain-leaf short path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Strawberry hands over a manager on every request, empty unless an extension wraps
        # resolvers; only without a wrapper may a field skip its resolver chain.
        manager = self.middleware_manager
        self._plain = manager is None or not manager.middlewares
        self._plans: dict[int, tuple[GraphQLField, _Leaf | None]] = (
            self.schema.extensions.setdefault(PLANS_KEY, {})
        )

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        """A plain leaf is read and coerced here; every other field as graphql-core does."""
        if self._plain:
            field_def = self.schema.get_field(parent_type, field_details_list[0].node.name.value)
            if field_def is not None:
                known = self._plans.get(id(field_def))
                if known is None or known[0] is not field_def:
                    known = (field_def, _plan(field_def))
                    self._plans[id(field_def)] = known
                plan = known[1]
                if plan is not None:
                    value = self._leaf_value(plan, source)
                    if value is not _MISSING:
                        return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    @staticmethod
    def _leaf_value(plan: _Leaf, source: Any) -> Any:
        """The coerced value, None for a null, or _MISSING when the general path must decide."""
        try:
            name = plan.attribute
            result = getattr(source, name) if name is not None else plan.resolve(source, None)
            if result is None:
                # Null is the answer of a nullable field; for a non-null one the general path
                # raises the error.
                return None if plan.nullable else _MISSING
            coerced = plan.leaf.coerce_output_value(result)
        except Exception:  # the general path reports it, located and masked as usual
            return _MISSING
        if coerced is None or coerced is Undefined:
            return _MISSING
        return coerced
