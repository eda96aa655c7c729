"""One span per GraphQL operation: its type and name, never the document or its variables.

Strawberry's own OpenTelemetry extension makes a span per resolver call and records arguments;
documents can carry secrets as inline literals (a share token), so neither is recorded here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from media.telemetry import tracing

# A GraphQL Name: what a real operation name must be. Anything else the caller sent is dropped.
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


class OperationSpan(SchemaExtension):
    """`query ListMedia` (or mutation, subscription) around parsing, validation, execution."""

    def on_operation(self) -> Iterator[None]:
        """Wrap the operation in a span, named once the document is parsed."""
        with tracing.span("graphql operation") as current:
            yield
            if current is None:
                return
            kind, name = self._describe()
            current.set_attribute("graphql.operation.type", kind)
            if name is not None:
                current.set_attribute("graphql.operation.name", name)
            current.update_name(f"{kind} {name}" if name else kind)
            result = self.execution_context.result
            if result is not None and result.errors:
                current.set_attribute("graphql.error_count", len(result.errors))

    def _describe(self) -> tuple[str, str | None]:
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except Exception:  # no parsable document, or no operation of that name
            return "graphql", None
        name = context.operation_name
        return kind, name if name is not None and _NAME.fullmatch(name) else None
