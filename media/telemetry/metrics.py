"""Every Prometheus metric of the service, with bounded label values only (never a path or token).

Label children on hot paths are bound once (`labels()` costs a lock and a dict lookup per call).
Under `PROMETHEUS_MULTIPROC_DIR` prometheus-client keeps these values in per-process files that
`/metrics` merges; the service defines no gauges there, so no process-death bookkeeping is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Counter, Histogram

# Seconds; from a cached 64 KiB range (~1 ms) to a slow S3 read or a long request.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds; probing takes milliseconds, a remux or transcode of a long video minutes.
PROCESSING_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUESTS = Counter(
    "media_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "media_http_request_duration_seconds",
    "Time from request start to the end of the response body, by route template and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
BYTES_SERVED = Counter(
    "media_bytes_served",
    "Body bytes sent for signed read URLs, by purpose (stream, download, thumbnail, hls)",
    ["purpose"],
)
RANGE_OUTCOMES = Counter(
    "media_range_requests",
    "Answers of the streaming endpoint: full, head, single, multi, not_modified, "
    "precondition_failed, unsatisfiable, refused, unavailable",
    ["outcome"],
)
FIRST_BYTE = Histogram(
    "media_stream_first_byte_seconds",
    "Time from request start to the first body byte of a streamed object",
    buckets=LATENCY_BUCKETS,
)
STORAGE_CALLS = Counter(
    "media_storage_operations",
    "Object storage calls by backend, operation and outcome",
    ["backend", "operation", "outcome"],
)
STORAGE_DURATION = Histogram(
    "media_storage_operation_seconds",
    "Object storage call time by backend and operation (reads: until the first chunk)",
    ["backend", "operation"],
    buckets=LATENCY_BUCKETS,
)
UPLOADS = Counter(
    "media_uploads",
    "Uploads that reached a final state: done, failed, expired",
    ["outcome"],
)
PROCESSING_DURATION = Histogram(
    "media_processing_seconds",
    "Processing time by stage and outcome (ok, error)",
    ["stage", "outcome"],
    buckets=PROCESSING_BUCKETS,
)
URL_CHECKS = Counter(
    "media_signed_url_checks",
    "Signed-URL checks by result: ok or the reason of the refusal",
    ["result"],
)

LISTENER_RECONNECTS = Counter(
    "media_listener_reconnects",
    "Times the LISTEN connection for events from other processes was opened again after a loss",
)
# Read from the queue at scrape time (not kept here): one process answers, the queue is shared.
JOBS_QUEUED = "media_jobs_queued"

K = TypeVar("K")
C = TypeVar("C")


class Children(dict[K, C]):
    """Label children made on first use, then found by one dict lookup."""

    def __init__(self, make: Callable[[K], C]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key: K) -> C:
        child = self[key] = self._make(key)
        return child
