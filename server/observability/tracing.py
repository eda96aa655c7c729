"""The OpenTelemetry SDK, set up by the standard OTEL_* variables; off unless an exporter is named.

OTEL_TRACES_EXPORTER picks `console` (one JSON span per line on stdout) and/or `otlp`
(HTTP/protobuf; the exporter reads OTEL_EXPORTER_OTLP_* itself). The SDK reads the rest:
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*,
OTEL_PROPAGATORS. One provider per process: a second app in the same process shares the first one's.
"""

from __future__ import annotations

import os
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Tracer

from media.config import Settings
from media.telemetry.tracing import current_tracer, use_tracer

DEFAULT_SERVICE_NAME = "media-service"
INSTRUMENTATION_NAME = "media-service"

_providers: list[TracerProvider] = []


def start_tracing(settings: Settings) -> Tracer | None:
    """The process's tracer when settings name an exporter (made on first call), else None."""
    if not settings.tracing_enabled:
        return None
    tracer = current_tracer()
    if tracer is not None:
        return tracer
    provider = TracerProvider(resource=_resource())
    for name in settings.traces_exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    _providers.append(provider)
    tracer = provider.get_tracer(INSTRUMENTATION_NAME)
    use_tracer(tracer)
    return tracer


def flush_tracing() -> None:
    """Export what is buffered (at shutdown: the batch processor would drop it)."""
    for provider in _providers:
        provider.force_flush()


def _resource() -> Resource:
    resource = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(
            out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + os.linesep
        )
    # Imported only when asked for: it pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
