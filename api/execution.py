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

from collections.abc import Callable
from typing import Any, Final

import strawberry
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
from strawberry.types.base import StrawberryOptional

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


# Marks a resolver whose only use of `info` is `info.context` (see context_resolver).
CONTEXT_ONLY: Final = "__media_context_only__"
# GraphQL's built-in scalars, and the Python types Strawberry maps to them and passes their
# values in unconverted (not GlobalID, which is an `ID` too, nor Maybe, nor a type override).
_PLAIN_ARGUMENT_TYPES: Final = frozenset({"Int", "Float", "String", "Boolean", "ID"})
_PLAIN_PYTHON_TYPES: Final = (int, float, str, bool, strawberry.ID)


def context_resolver(resolve: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a synchronous resolver `(root, info, **arguments)` that reads nothing of `info` but
    `info.context` and takes only built-in scalar arguments: graphql-core may call it directly
    (direct_resolvers), with its own resolve info, whose `context` is the same object."""
    setattr(resolve, CONTEXT_ONLY, True)
    return resolve


def direct_resolvers(schema: Any) -> int:
    """Let graphql-core call the marked resolvers of `schema` (a strawberry.Schema) itself.

    Strawberry's path around a resolver (a Strawberry Info per call, argument conversion, the
    field-extension chain) costs about as much as a signed URL field's own work (bench/README.md,
    GraphQL page). A field keeps that path unless it plainly has no use for it: a marked
    resolver (context_resolver), no field extensions or permissions, no exception handlers in
    the schema, built-in scalar arguments only. Schema extensions that wrap resolvers still wrap
    these (graphql-core applies them on top of the field's resolver). Returns how many fields
    were switched."""
    converter = getattr(schema, "schema_converter", None)
    if converter is None or getattr(converter, "_exception_handler_specs", None) not in ((), []):
        return 0  # a Strawberry that may handle field errors itself: leave every field alone
    naming = schema.config.name_converter
    switched = 0
    for named in schema._schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for field in named.fields.values():
            direct = _direct(field, naming)
            if direct is not None:
                field.resolve = direct
                switched += 1
    return switched


def _direct(field: GraphQLField, naming: Any) -> Callable[..., Any] | None:
    """graphql-core's resolver for a field whose Strawberry path does nothing, else None."""
    definition = field.extensions.get("strawberry-definition")
    resolver = getattr(definition, "base_resolver", None)
    if definition is None or resolver is None or definition.extensions or resolver.is_async:
        return None
    resolve = resolver.wrapped_func
    if not getattr(resolve, CONTEXT_ONLY, False):
        return None
    parameters = list(resolver.signature.parameters.values())
    root, info = resolver.root_parameter, resolver.info_parameter
    if root is None or info is None or parameters[:2] != [root, info]:
        return None
    if not all(_plain_argument(argument) for argument in definition.arguments):
        return None
    python_names = {naming.from_argument(a): a.python_name for a in definition.arguments}
    for graphql_name, argument in field.args.items():
        declared = argument.type
        kind = declared.of_type if isinstance(declared, GraphQLNonNull) else declared
        if not isinstance(kind, GraphQLScalarType) or kind.name not in _PLAIN_ARGUMENT_TYPES:
            return None
        if graphql_name not in python_names:
            return None

    def direct(source: Any, info: Any, **arguments: Any) -> Any:
        # graphql-core leaves out an argument the query omits (the resolver's default applies)
        # and passes an explicit null as None, as Strawberry does for a plain optional.
        if arguments:
            arguments = {python_names[name]: value for name, value in arguments.items()}
        return resolve(source, info, **arguments)

    return direct


def _plain_argument(argument: Any) -> bool:
    """True when Strawberry would hand the argument's value over as graphql-core parsed it."""
    if getattr(argument, "is_maybe", True) or getattr(argument, "graphql_type", None) is not None:
        return False
    kind = argument.type
    if isinstance(kind, StrawberryOptional):
        kind = kind.of_type
    return any(kind is plain for plain in _PLAIN_PYTHON_TYPES)
