"""Telemetry the core records: Prometheus metrics and OpenTelemetry spans, never a token."""
