"""The recording Storage wrapper over each real backend: counts, durations and spans per call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from media.config import Settings
from media.errors import NotFound
from media.models import PartSlot
from media.storage import Storage, open_storage
from media.storage.observed import ObservedStorage
from media.telemetry.tally import flush_all

CHUNK = 64 * 1024


def _count(backend: str, operation: str, outcome: str) -> float:
    flush_all()
    labels = {"backend": backend, "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("media_storage_operations_total", labels) or 0.0


def _timed(backend: str, operation: str) -> float:
    flush_all()
    labels = {"backend": backend, "operation": operation}
    return REGISTRY.get_sample_value("media_storage_operation_seconds_count", labels) or 0.0


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


@pytest.fixture
async def observed(storage_url: str, tmp_path: Path) -> AsyncIterator[tuple[Storage, str]]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'media.sqlite3'}",
        storage_url=storage_url,
        stream_chunk_bytes=CHUNK,
    )
    backend = "s3" if storage_url.startswith("s3://") else "local"
    opened = ObservedStorage(await open_storage(settings), backend)
    yield opened, backend
    await opened.close()


async def test_every_call_is_counted_with_its_outcome(
    observed: tuple[Storage, str], spans: InMemorySpanExporter
) -> None:
    storage, backend = observed
    key, data = uuid.uuid4().hex, bytes(range(256)) * 1024  # 256 KiB: four chunks
    before = {
        (op, outcome): _count(backend, op, outcome)
        for op, outcome in [
            ("write", "ok"),
            ("read", "ok"),
            ("stat", "not_found"),
            ("delete", "ok"),
        ]
    }
    reads_timed = _timed(backend, "read")
    await storage.write(key, _chunks(data), content_type="image/png", max_bytes=len(data))
    assert b"".join([chunk async for chunk in storage.read(key, 0, len(data))]) == data
    # A reader that stops early (a client gone) is not a storage failure.
    async with aclosing(storage.read(key, 0, len(data))) as partial:
        assert len(await anext(partial)) == CHUNK
    with pytest.raises(NotFound):
        await storage.stat(uuid.uuid4().hex)
    await storage.delete(key)
    assert _count(backend, "write", "ok") == before[("write", "ok")] + 1
    assert _count(backend, "read", "ok") == before[("read", "ok")] + 2
    assert _count(backend, "stat", "not_found") == before[("stat", "not_found")] + 1
    assert _count(backend, "delete", "ok") == before[("delete", "ok")] + 1
    assert _timed(backend, "read") == reads_timed + 2  # once each, at the first chunk
    names = [span.name for span in spans.get_finished_spans()]
    assert names.count("storage read") == 2 and "storage write" in names
    failed = [s for s in spans.get_finished_spans() if s.name == "storage stat"]
    assert failed[-1].attributes is not None
    assert failed[-1].attributes["error.type"] == "NotFound"
    assert failed[-1].attributes["media.storage.backend"] == backend


async def test_a_read_of_an_absent_object_counts_not_found(observed: tuple[Storage, str]) -> None:
    storage, backend = observed
    before = _count(backend, "read", "not_found")
    with pytest.raises(NotFound):
        async with aclosing(storage.read(uuid.uuid4().hex, 0, 10)) as chunks:
            await anext(chunks)
    assert _count(backend, "read", "not_found") == before + 1


async def test_multipart_calls_are_counted(observed: tuple[Storage, str]) -> None:
    storage, backend = observed
    key, part = uuid.uuid4().hex, bytes(range(256)) * 20480  # one 5 MiB part
    ops = ("create_multipart", "write_part", "list_parts", "complete_multipart", "abort_multipart")
    before = {op: _count(backend, op, "ok") for op in ops}
    upload = await storage.create_multipart(key, content_type="video/mp4")
    await storage.write_part(key, upload, PartSlot(1, 0, len(part)), _chunks(part))
    parts = await storage.list_parts(key, upload)
    info = await storage.complete_multipart(key, upload, parts)
    assert info.size == len(part)
    await storage.abort_multipart(
        key, await storage.create_multipart(key, content_type="video/mp4")
    )
    expected = {op: 1.0 for op in ops} | {"create_multipart": 2.0}
    assert {op: _count(backend, op, "ok") - before[op] for op in ops} == expected
    await storage.delete(key)
