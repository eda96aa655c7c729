"""`@stage(name)`: time and trace one processing step (synchronous, run in a worker thread)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from media.telemetry.metrics import PROCESSING_DURATION
from media.telemetry.tracing import span

P = ParamSpec("P")
T = TypeVar("T")


def stage(name: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Record the step's duration as `media_processing_seconds{stage=name}` and a span."""
    done = PROCESSING_DURATION.labels(name, "ok")
    failed = PROCESSING_DURATION.labels(name, "error")
    span_name = f"processing {name}"
    attributes = {"media.processing.stage": name}

    def decorate(func: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(func)
        def timed(*args: P.args, **kwargs: P.kwargs) -> T:
            started = time.perf_counter()
            outcome = failed
            try:
                with span(span_name, attributes):
                    result = func(*args, **kwargs)
                outcome = done
                return result
            finally:
                outcome.observe(time.perf_counter() - started)

        return timed

    return decorate
