"""Observability of the HTTP process: request telemetry, /metrics, tracing setup, log format."""
