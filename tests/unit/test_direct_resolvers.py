"""Resolvers that graphql-core calls directly (api/execution.py) answer exactly as Strawberry's
path does, and only fields with no use for that path are switched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
import strawberry
from strawberry import relay
from strawberry.permission import BasePermission

from api.execution import ExecutionContext, context_resolver, direct_resolvers
from tests.unit.test_leaf_execution import Wrapping  # must still see the switched fields

seen_infos: list[str] = []


@dataclass
class Context:
    prefix: str


class Refused(Exception):
    pass


@context_resolver
def resolve_label(
    root: Thing,
    info: strawberry.Info,
    times: int | None = None,
    suffix_text: Annotated[str, strawberry.argument(name="tail")] = "",
) -> str | None:
    seen_infos.append("Strawberry" if isinstance(info, strawberry.Info) else "graphql-core")
    if times is not None and times < 0:
        raise Refused("times must not be negative")
    if times == 0:
        return None
    return info.context.prefix + root.name * (times or 1) + suffix_text


@context_resolver
def resolve_required(root: Thing, info: strawberry.Info) -> str:
    return None  # type: ignore[return-value]  # null for a non-null field: a located error


@context_resolver
async def resolve_later(root: Thing, info: strawberry.Info) -> str:
    return root.name


@strawberry.input
class Shape:
    sides: int


@context_resolver
def resolve_shaped(root: Thing, info: strawberry.Info, shape: Shape) -> int:
    return shape.sides


@context_resolver
def resolve_node(root: Thing, info: strawberry.Info, of: relay.GlobalID) -> str:
    return f"{of.type_name}:{of.node_id}"


@context_resolver
def resolve_maybe(root: Thing, info: strawberry.Info, value: strawberry.Maybe[int | None]) -> str:
    return "omitted" if value is None else f"given {value.value}"


@context_resolver
def resolve_explicit(root: Thing, info: strawberry.Info, value: int | None = 7) -> str:
    return f"value {value}"


class Never(BasePermission):
    message = "no"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Thing:
    name: str
    label: str | None = strawberry.field(resolver=resolve_label)
    required: str = strawberry.field(resolver=resolve_required)
    later: str = strawberry.field(resolver=resolve_later)
    shaped: int = strawberry.field(resolver=resolve_shaped)
    guarded: str | None = strawberry.field(resolver=resolve_label, permission_classes=[Never])
    node: str = strawberry.field(resolver=resolve_node)
    maybe: str = strawberry.field(resolver=resolve_maybe)
    explicit: str = strawberry.field(resolver=resolve_explicit)


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing]:
        return [Thing(name="a"), Thing(name="b")]


QUERIES = [
    "{ things { name label } }",
    '{ things { label(times: 2) again: label(times: 3, tail: "!") } }',
    "{ things { label(times: 0) } }",
    "{ things { label(times: -1) name } }",
    "{ things { required } }",
    "{ things { later shaped(shape: {sides: 3}) guarded } }",
    "query Q($n: Int) { things { label(times: $n) } }",
    # Omitted, explicitly null, and given through variables that are set, null or absent.
    "{ things { explicit a: explicit(value: null) b: explicit(value: 3) } }",
    "query Q($n: Int, $none: Int, $absent: Int) "
    "{ things { a: explicit(value: $n) b: explicit(value: $none) c: explicit(value: $absent) } }",
    # Arguments Strawberry converts: never switched.
    '{ things { node(of: "VGhpbmc6MQ==") bad: node(of: "bad!") } }',
    "{ things { maybe a: maybe(value: null) b: maybe(value: 3) } }",
]


def _schema(*, direct: bool, extensions: list[Any]) -> strawberry.Schema:
    schema = strawberry.Schema(
        query=Query, execution_context_class=ExecutionContext, extensions=extensions
    )
    if direct:
        # label, required and explicit; not later, shaped, guarded, node or maybe
        assert direct_resolvers(schema) == 3
    return schema


async def _run(query: str, *, direct: bool, extensions: list[Any]) -> dict[str, Any]:
    result = await _schema(direct=direct, extensions=extensions).execute(
        query, context_value=Context(prefix="<"), variable_values={"n": 2, "none": None}
    )
    return {
        "data": result.data,
        "errors": [(e.message, e.path) for e in result.errors or []],
    }


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("extensions", [[], [Wrapping]], ids=["plain", "wrapped"])
async def test_same_answer_as_strawberrys_path(query: str, extensions: list[Any]) -> None:
    ours = await _run(query, direct=True, extensions=extensions)
    assert ours == await _run(query, direct=False, extensions=extensions)


@pytest.mark.parametrize("direct", [True, False])
async def test_the_switched_fields_skip_strawberrys_resolver_path(direct: bool) -> None:
    seen_infos.clear()
    schema = _schema(direct=direct, extensions=[])
    await schema.execute("{ things { label } }", context_value=Context(prefix=""))
    # Strawberry's path hands a Strawberry Info to the resolver; the direct call hands over
    # the executor's resolve info (the same context).
    assert seen_infos == ["graphql-core" if direct else "Strawberry"] * 2


async def test_schemas_with_exception_handlers_are_left_alone() -> None:
    schema = _schema(direct=False, extensions=[])
    schema.schema_converter._exception_handler_specs = ((Refused,), None, None)  # type: ignore[attr-defined]
    assert direct_resolvers(schema) == 0
