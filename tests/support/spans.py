"""An in-memory OpenTelemetry tracer for the core's spans, switched off again after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from media.telemetry.tracing import current_tracer, use_tracer


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of everything traced during the test (the process tracer is restored)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    before = current_tracer()
    use_tracer(provider.get_tracer("tests"))
    try:
        yield exporter
    finally:
        use_tracer(before)
        provider.shutdown()
