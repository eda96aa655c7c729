"""The plain-leaf short path (api/execution.py) answers exactly as graphql-core's general path."""

from __future__ import annotations

import enum
import gc
import weakref
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from api import execution
from api.execution import ExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    name: str
    note: str | None
    count: int
    when: datetime
    colour: Colour
    missing: str  # non-null, but the value is None: a located error
    huge: int  # beyond GraphQL's Int: the scalar refuses it
    flag: bool | None

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times


def _items() -> list[Item]:
    return [
        Item(
            name=f"item{i}",
            note=None if i % 2 else f"note{i}",
            count=i,
            when=datetime(2026, 1, 1 + i, tzinfo=UTC),
            colour=Colour.RED if i % 2 else Colour.BLUE,
            missing=None,  # type: ignore[arg-type]
            huge=2**40,
            flag=None if i == 1 else i % 2 == 0,
        )
        for i in range(3)
    ]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return _items()

    @strawberry.field
    def maybe(self) -> Item | None:
        return _items()[1]


class Wrapping(SchemaExtension):
    """An extension that wraps every resolver: the short path must step aside (and the direct
    resolvers of test_direct_resolvers.py stay inside it)."""

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        value = _next(root, info, *args, **kwargs)
        return value.upper() if isinstance(value, str) else value


QUERIES = [
    "{ items { name note count when colour flag shout(times: 2) } }",
    "{ items { name missing } }",
    "{ items { count huge } }",
    "{ maybe { name alias: note missing } }",
    "{ items { __typename name } }",
]


def _run(query: str, context_class: type | None, extensions: list[Any]) -> dict[str, Any]:
    schema = strawberry.Schema(
        query=Query, execution_context_class=context_class, extensions=extensions
    )
    result = schema.execute_sync(query)
    return {
        "data": result.data,
        "errors": [(e.message, e.path) for e in result.errors or []],
    }


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("extensions", [[], [Wrapping]], ids=["plain", "wrapped"])
def test_same_answer_as_the_general_path(query: str, extensions: list[Any]) -> None:
    assert _run(query, ExecutionContext, extensions) == _run(query, None, extensions)


def test_plain_leaves_take_the_short_path(monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[str] = []
    original = ExecutionContext._leaf_value

    def spy(plan: Any, source: Any) -> Any:
        taken.append(type(source).__name__)
        return original(plan, source)

    monkeypatch.setattr(ExecutionContext, "_leaf_value", staticmethod(spy))
    _run("{ items { name note count shout } }", ExecutionContext, [])
    assert taken == ["Item"] * 9  # name, note, count of 3 items; shout has a resolver

    taken.clear()
    _run("{ items { name } }", ExecutionContext, [Wrapping])
    assert taken == []  # a resolver-wrapping extension: every field takes the general path


def test_plans_are_made_once_per_field() -> None:
    schema = strawberry.Schema(query=Query, execution_context_class=ExecutionContext)
    schema.execute_sync("{ items { name } }")
    plans = schema._schema.extensions[execution.PLANS_KEY]
    before = dict(plans)
    schema.execute_sync("{ items { name } }")
    assert plans and plans == before  # items and name, planned by the first request


def test_plans_go_with_their_schema() -> None:
    """A schema's plans hold its field definitions: they must not outlive it (tests and any
    app rebuilt in one process build many schemas)."""
    schema = strawberry.Schema(query=Query, execution_context_class=ExecutionContext)
    schema.execute_sync("{ items { name } }")
    built = weakref.ref(schema._schema)
    del schema
    gc.collect()
    assert built() is None


def test_a_configured_default_resolver_is_honoured() -> None:
    """Plain getattr only when Strawberry itself would use it; else the field's own resolver."""
    from strawberry.schema.config import StrawberryConfig

    def shouting(source: object, name: str) -> object:
        value = getattr(source, name)
        return value.upper() if isinstance(value, str) else value

    config = StrawberryConfig(default_resolver=shouting)
    query = "{ items { name note count } }"
    ours = strawberry.Schema(query=Query, execution_context_class=ExecutionContext, config=config)
    theirs = strawberry.Schema(query=Query, config=config)
    answer = ours.execute_sync(query)
    assert answer.data == theirs.execute_sync(query).data
    assert answer.data is not None and answer.data["items"][0]["name"] == "ITEM0"
