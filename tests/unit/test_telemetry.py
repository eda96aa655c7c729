"""The core's telemetry pieces: stage timing, signed-URL verdicts, spans, log lines, outcomes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from media.config import load_settings
from media.errors import InvalidSignature, NotFound, TooLarge, Unavailable
from media.service.url_checks import counted_url_check, result_of
from media.storage.observed import outcome_of
from media.telemetry import request, tracing
from media.telemetry.stages import stage
from media.telemetry.tally import counter_tally, flush_all, histogram_tally
from server.observability.http import _range_outcome
from server.observability.logs import JsonFormatter, TextFormatter
from server.observability.multiprocess import prepare_multiprocess_metrics

SECRET = "s.eyJtIjoxfQ.secret-signature"


def _value(name: str, **labels: str) -> float:
    flush_all()
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_stage_times_successes_and_failures_apart() -> None:
    @stage("unit-test")
    def work(fail: bool) -> int:
        if fail:
            raise ValueError("bad input")
        return 7

    ok, error = (
        _value("media_processing_seconds_count", stage="unit-test", outcome=o)
        for o in ("ok", "error")
    )
    assert work(False) == 7
    with pytest.raises(ValueError, match="bad input"):
        work(True)
    assert _value("media_processing_seconds_count", stage="unit-test", outcome="ok") == ok + 1
    assert _value("media_processing_seconds_count", stage="unit-test", outcome="error") == error + 1


@pytest.mark.parametrize(
    ("reason", "result"),
    [
        ("max_age", "expired"),
        ("upload expired", "expired"),
        ("bad_signature", "bad_signature"),
        ("non_canonical", "malformed"),
        ("purpose_mismatch", "wrong_purpose"),
        ("revoked", "revoked"),
        ("media absent", "absent"),
        ("media not ready", "not_ready"),
        ("link revoked", "link_revoked"),
        ("download not allowed", "link_refused"),
        (SECRET, "other"),  # free text never becomes a label value
        (None, "other"),
    ],
)
def test_refusal_reasons_fold_into_few_labels(reason: object, result: str) -> None:
    assert result_of(reason) == result


async def test_url_checks_count_verdicts_only() -> None:
    @counted_url_check
    async def check(error: Exception | None) -> str:
        if error is not None:
            raise error
        return "target"

    before = {r: _value("media_signed_url_checks_total", result=r) for r in ("ok", "expired")}
    assert await check(None) == "target"
    with pytest.raises(InvalidSignature):
        await check(InvalidSignature("refused", reason="max_age"))
    with pytest.raises(Unavailable):  # an outage is no verdict on the URL
        await check(Unavailable("down", dependency="database"))
    assert _value("media_signed_url_checks_total", result="ok") == before["ok"] + 1
    assert _value("media_signed_url_checks_total", result="expired") == before["expired"] + 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (NotFound("x"), "not_found"),
        (TooLarge("x"), "too_large"),
        (Unavailable("x", dependency="storage"), "unavailable"),
        (RuntimeError("x"), "error"),
        (KeyboardInterrupt(), "cancelled"),
    ],
)
def test_storage_outcomes(error: BaseException | None, outcome: str) -> None:
    assert outcome_of(error) == outcome


@pytest.mark.parametrize(
    ("method", "status", "multipart", "outcome"),
    [
        ("GET", 200, False, "full"),
        ("HEAD", 200, False, "head"),
        ("GET", 206, False, "single"),
        ("GET", 206, True, "multi"),
        ("GET", 304, False, "not_modified"),
        ("GET", 412, False, "precondition_failed"),
        ("GET", 416, False, "unsatisfiable"),
        ("GET", 403, False, "refused"),
        ("GET", 503, False, "unavailable"),
        ("GET", 500, False, "other"),
    ],
)
def test_range_outcomes(method: str, status: int, multipart: bool, outcome: str) -> None:
    assert _range_outcome(method, status, multipart) == outcome


def test_span_is_a_no_op_while_tracing_is_off() -> None:
    assert tracing.current_tracer() is None
    with tracing.span("anything") as current:
        assert current is None
    assert tracing.start_span("anything") is None


def test_failed_span_names_the_error_type_never_its_message(spans: InMemorySpanExporter) -> None:
    with pytest.raises(InvalidSignature), tracing.span("check", {"a": 1}):
        raise InvalidSignature(f"refused {SECRET}", reason="bad_signature")
    (finished,) = spans.get_finished_spans()
    assert finished.name == "check" and finished.attributes == {
        "a": 1,
        "error.type": "InvalidSignature",
    }
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description == "InvalidSignature"
    assert not finished.events  # no exception event with the message


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("media.request", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_request_and_trace_ids(spans: InMemorySpanExporter) -> None:
    fields = {"method": "GET", "route": "/media/{token}", "status": 206, "bytes": 10, "ms": 1.5}
    _facts, token = request.begin("req-12345678")
    try:
        tracer = tracing.current_tracer()
        assert tracer is not None
        with tracer.start_as_current_span("request") as current:
            line = json.loads(
                JsonFormatter().format(_record("request {...}", media_request=fields))
            )
            text = TextFormatter().format(_record("hello"))
        trace_id = format(current.get_span_context().trace_id, "032x")
    finally:
        request.end(token)
    assert line["request_id"] == "req-12345678" and line["trace_id"] == trace_id
    assert line["message"] == "request" and line["level"] == "INFO"
    assert (line["route"], line["status"], line["bytes"], line["duration_ms"]) == (
        "/media/{token}",
        206,
        10,
        1.5,
    )
    assert line["timestamp"].endswith("+00:00")
    assert text.endswith(f"hello request_id=req-12345678 trace_id={trace_id}")
    outside = TextFormatter().format(_record("plain"))
    assert outside.endswith(" plain")


def test_tallies_expose_exactly_what_direct_recording_exposes() -> None:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    buckets = (0.01, 0.1, 1.0)
    histograms = [
        Histogram("h", "h", ["k"], buckets=buckets, registry=r) for r in (direct, tallied)
    ]
    counters = [Counter("c", "c", ["k"], registry=r) for r in (direct, tallied)]
    values = [0.0, 0.01, 0.010001, 0.5, 1.0, 7.0, 0.1]
    for value in values:
        histograms[0].labels("a").observe(value)
        counters[0].labels("a").inc(value)
    histogram, counter = (
        histogram_tally(histograms[1].labels("a")),
        counter_tally(counters[1].labels("a")),
    )
    assert histogram_tally(histograms[1].labels("a")) is histogram  # one tally per child
    for value in values:
        histogram.observe(value)
        counter.add(value)
    assert _exposed(tallied) != _exposed(direct)  # nothing before a flush
    flush_all()
    flush_all()  # a second flush adds nothing
    assert _exposed(tallied) == _exposed(direct)


def _exposed(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]  # creation times differ


@pytest.mark.parametrize("configured", [False, True])
def test_the_shared_metrics_folder_starts_empty(tmp_path: Path, configured: bool) -> None:
    environ = {"MEDIA_DATA_DIR": str(tmp_path / "data")}
    if configured:
        environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    folder = tmp_path / "prom" if configured else tmp_path / "data" / "prometheus"
    folder.mkdir(parents=True)
    (folder / "counter_123.db").write_bytes(b"old run")
    (folder / "notes.txt").write_text("not ours")
    settings = load_settings(environ)
    assert prepare_multiprocess_metrics(settings, environ) == folder
    assert environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt"]
    assert load_settings(environ).metrics_multiproc_dir == folder
