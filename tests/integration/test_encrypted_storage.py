"""Encryption at rest over both backends: storage contract, bytes at rest, tampering, rotation."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from media.config import Settings
from media.db import open_database
from media.errors import ConfigError, CorruptObject, NotFound
from media.models import PartSlot
from media.repository import Repository
from media.storage import Storage, open_storage
from media.storage.chunked import CHUNK, HEADER, SEALED, ciphertext_size
from media.storage.encrypted import PIECE_BYTES
from media.storage.files import local_copy, store_file
from media.storage.keyring import Keyring, rewrap_all
from tests.integration.test_storage import (  # noqa: F401  (the contract, collected again here)
    MiB,
    collect,
    new_key,
    open_paths,
    payload,
    pieces,
    record_gets,
    settings_for,
    test_both_uuid_spellings_are_keys,
    test_concurrent_reads,
    test_delete_removes_and_is_idempotent,
    test_failing_source_leaves_nothing,
    test_keys_are_validated,
    test_missing_key_is_not_found,
    test_negative_ranges_are_refused,
    test_partial_object_is_never_visible,
    test_ranges_across_chunks_and_parts,
    test_ranges_at_the_edges,
    test_write_over_max_bytes_leaves_nothing,
    test_write_stat_read_round_trip,
)
from tests.integration.test_storage_multipart import (  # noqa: F401  (collected again here)
    test_a_part_sent_again_replaces_the_first,
    test_a_short_part_is_refused_and_not_listed,
    test_abort_leaves_nothing,
    test_parts_out_of_order_assemble_in_order,
)
from tests.support.s3 import s3_client

# The storage contract tests imported above run again here, through the encryption layer: this
# module's `storage` fixture replaces theirs.
MARKER = b"PLAINTEXT-MARKER-0123456789"


def master_key(key_id: str) -> str:
    """One MEDIA_ENCRYPTION_KEYS entry with a fresh random key."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def encrypted_settings(url: str, tmp_path: Path, keys: str | None) -> Settings:
    """Settings for `url` with the given MEDIA_ENCRYPTION_KEYS value (None: none)."""
    from media.config import _master_keys

    extra: dict[str, Any] = {"encryption_keys": _master_keys(keys) if keys else ()}
    return settings_for(url, tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", **extra)


@pytest.fixture
async def repo(tmp_path: Path, _migrated_sqlite: Path) -> AsyncIterator[Repository]:
    """A fresh migrated SQLite database for envelopes."""
    shutil.copyfile(_migrated_sqlite, tmp_path / "db.sqlite3")
    database = await open_database(encrypted_settings("file:///unused", tmp_path, None))
    yield Repository(database)
    await database.close()


@pytest.fixture
def keys() -> str:
    """The master keys of one test."""
    return master_key("k1")


@pytest.fixture
async def storage(
    storage_url: str, tmp_path: Path, repo: Repository, keys: str
) -> AsyncIterator[Storage]:
    """Each backend behind the encryption layer."""
    opened = await open_storage(encrypted_settings(storage_url, tmp_path, keys), repo)
    yield opened
    await opened.close()


def stored_bytes(storage_url: str, key: str) -> bytes:
    """The bytes at rest of one object, read around the service."""
    if storage_url.startswith("file://"):
        root = Path(storage_url.removeprefix("file://"))
        return (root / key[:2] / key[2:4] / key).read_bytes()
    bucket, _, query = storage_url.removeprefix("s3://").partition("?")
    endpoint = dict(item.split("=", 1) for item in query.split("&"))["endpoint_url"]
    return bytes(s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())


def replace_stored(storage_url: str, key: str, data: bytes) -> None:
    """Overwrite the bytes at rest of one object, as someone with bucket access could."""
    if storage_url.startswith("file://"):
        root = Path(storage_url.removeprefix("file://"))
        (root / key[:2] / key[2:4] / key).write_bytes(data)
        return
    bucket, _, query = storage_url.removeprefix("s3://").partition("?")
    endpoint = dict(item.split("=", 1) for item in query.split("&"))["endpoint_url"]
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=data)


async def test_no_plaintext_at_rest(storage: Storage, storage_url: str, tmp_path: Path) -> None:
    data = (MARKER + payload(1000)) * 300 + MARKER
    key = new_key()
    written = await storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    assert (written.size, written.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(MARKER * 10)
    thumb_key = new_key()
    await store_file(storage, thumb_key, thumb, content_type="image/jpeg")
    for name, size in ((key, len(data)), (thumb_key, 10 * len(MARKER))):
        at_rest = stored_bytes(storage_url, name)
        assert MARKER not in at_rest
        assert len(at_rest) == ciphertext_size(size)
        assert (await storage.stat(name)).size == size
    assert b"".join(await collect(storage.read(key, 0, len(data)))) == data
    target = tmp_path / "scratch" / "copy"
    target.parent.mkdir()
    await local_copy(storage, key, target)  # processing's copy is decrypted, never a link
    assert target.read_bytes() == data


async def test_a_copy_of_an_object_cut_at_a_chunk_boundary_is_refused(
    storage: Storage, storage_url: str, tmp_path: Path
) -> None:
    """Cut after whole chunks with a tag-sized tail, the object's stat reports the shorter
    size, so a copy must read what was recorded: it then meets the forged end and refuses."""
    data = payload(3 * CHUNK + 50)
    key = new_key()
    await storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    cut = stored_bytes(storage_url, key)[: HEADER + 2 * SEALED] + bytes(16)
    replace_stored(storage_url, key, cut)
    assert (await storage.stat(key)).size == 2 * CHUNK  # what stat alone would believe
    target = tmp_path / "copy"
    with pytest.raises(CorruptObject):
        await local_copy(storage, key, target, size=len(data))
    assert not target.exists()


async def test_tampered_object_fails_loudly(
    storage: Storage, storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = payload(3 * CHUNK + 50)
    key = new_key()
    await storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    original = stored_bytes(storage_url, key)
    flipped = bytearray(original)
    flipped[HEADER + SEALED + 10] ^= 0x40  # inside chunk 1
    replace_stored(storage_url, key, bytes(flipped))
    # A range of chunk 0 alone is untouched and still served; anything reading chunk 1 fails.
    assert b"".join(await collect(storage.read(key, 0, 100))) == data[:100]
    with (
        caplog.at_level(logging.ERROR, logger="media.encryption"),
        pytest.raises(CorruptObject),
    ):
        await collect(storage.read(key, CHUNK + 5, 10))
    assert any("failed authentication" in r.getMessage() for r in caplog.records)
    # Cut at a chunk boundary: the short final chunk is gone.
    replace_stored(storage_url, key, original[: HEADER + 2 * SEALED])
    with pytest.raises(CorruptObject):
        await collect(storage.read(key, 0, len(data)))
    with pytest.raises(CorruptObject):
        await collect(storage.read(key, 2 * CHUNK + 1, 5))  # starts where the bytes stop
    with pytest.raises(CorruptObject):
        await storage.stat(key)
    # Another object's bytes put in its place.
    other = new_key()
    await storage.write(other, pieces(data), content_type="video/mp4", max_bytes=len(data))
    replace_stored(storage_url, key, stored_bytes(storage_url, other))
    with pytest.raises(CorruptObject):
        await collect(storage.read(key, 0, 10))


async def test_long_reads_from_the_start(storage: Storage) -> None:
    # Above LONG_READ_BYTES from the first chunk: batches opened in a worker thread.
    data = payload(5 * MiB + 12_345, seed=7)
    key = new_key()
    await storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    held = await collect(storage.read(key, 0, len(data)))  # every piece kept: none changes
    assert b"".join(held) == data
    assert max(len(piece) for piece in held) <= 64 * 1024  # settings_for's chunk size
    for start, length in ((0, 4 * MiB), (CHUNK - 3, 3 * MiB + 1), (7, len(data) + 50)):
        got = b"".join(await collect(storage.read(key, start, length)))
        assert got == data[start : start + length], (start, length)
    empty = payload(4 * CHUNK * 64)  # a multiple of the chunk: the final chunk is empty
    other = new_key()
    await storage.write(other, pieces(empty, MiB), content_type="video/mp4", max_bytes=len(empty))
    assert b"".join(await collect(storage.read(other, 0, len(empty) + 1))) == empty


async def test_long_reads_at_the_default_chunk_size_send_pieces_of_at_most_256_kib(
    storage_url: str, tmp_path: Path, repo: Repository, keys: str
) -> None:
    # 1 MiB stream chunks (the default); an encrypted long read still sends 256 KiB pieces.
    settings = replace(encrypted_settings(storage_url, tmp_path, keys), stream_chunk_bytes=MiB)
    opened = await open_storage(settings, repo)
    try:
        data = payload(5 * MiB + 3, seed=11)
        key = new_key()
        await opened.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
        held = await collect(opened.read(key, 0, len(data)))
        assert b"".join(held) == data
        assert max(len(piece) for piece in held) == PIECE_BYTES
    finally:
        await opened.close()


async def test_long_read_stops_at_a_tampered_chunk(
    storage: Storage, storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = payload(6 * MiB + 100, seed=8)
    key = new_key()
    await storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    original = stored_bytes(storage_url, key)
    bad_chunk = (4 * MiB) // CHUNK + 3
    flipped = bytearray(original)
    flipped[HEADER + bad_chunk * SEALED + 99] ^= 0x01
    replace_stored(storage_url, key, bytes(flipped))
    got = []
    with (
        caplog.at_level(logging.ERROR, logger="media.encryption"),
        pytest.raises(CorruptObject) as failed,
    ):
        async for piece in storage.read(key, 0, len(data)):
            got.append(bytes(piece))
    assert failed.value.data["chunk"] == bad_chunk
    assert any("failed authentication" in r.getMessage() for r in caplog.records)
    served = b"".join(got)
    assert len(served) <= bad_chunk * CHUNK  # nothing of the tampered chunk or after it
    assert served == data[: len(served)]  # and nothing wrong before it
    # Cut at a chunk boundary far into the object: the short final chunk is missing.
    replace_stored(storage_url, key, original[: HEADER + 300 * SEALED])
    with pytest.raises(CorruptObject, match="truncated"):
        await collect(storage.read(key, 0, len(data)))


async def test_long_read_closed_early_and_read_again(storage: Storage) -> None:
    data = payload(8 * MiB, seed=9)
    key = new_key()
    await storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    for taken in (1, 3, 9):  # closed while a batch is being opened in the worker thread
        reader = storage.read(key, 0, len(data))
        got = [bytes(await anext(reader)) for _ in range(taken)]
        await reader.aclose()  # type: ignore[attr-defined]
        assert b"".join(got) == data[: len(b"".join(got))]
    with anyio.move_on_after(0.05):
        async for _piece in storage.read(key, 0, len(data)):
            await anyio.sleep(0.01)  # a slow client, then cancelled
    assert b"".join(await collect(storage.read(key, 0, len(data)))) == data


async def test_long_read_of_a_local_file_closes_it_however_it_ends(
    tmp_path: Path, repo: Repository, keys: str
) -> None:
    storage_url = f"file://{tmp_path / 'objects'}"
    storage = await open_storage(encrypted_settings(storage_url, tmp_path, keys), repo)
    try:
        await _check_the_file_is_closed(storage, storage_url)
    finally:
        await storage.close()


async def _check_the_file_is_closed(storage: Storage, storage_url: str) -> None:
    data = payload(6 * MiB, seed=10)
    key = new_key()
    await storage.write(key, pieces(data, MiB), content_type="video/mp4", max_bytes=len(data))
    path = str(Path(storage_url.removeprefix("file://")) / key[:2] / key[2:4] / key)

    async def closed() -> bool:
        for _ in range(200):  # the reading thread closes it after the batch at hand
            if path not in open_paths():
                return True
            await anyio.sleep(0.01)
        return False

    reader = storage.read(key, 0, len(data))
    first = bytes(await anext(reader))
    assert first and first == data[: len(first)]
    await reader.aclose()  # type: ignore[attr-defined]
    assert await closed()
    assert b"".join(await collect(storage.read(key, 0, len(data)))) == data
    assert await closed()
    flipped = bytearray(stored_bytes(storage_url, key))
    flipped[HEADER + 200 * SEALED] ^= 0x01
    replace_stored(storage_url, key, bytes(flipped))
    with pytest.raises(CorruptObject):
        await collect(storage.read(key, 0, len(data)))
    assert await closed()


async def test_reading_past_the_end_is_empty_not_an_error(storage: Storage) -> None:
    data = payload(2 * CHUNK)  # a multiple of the chunk: the final chunk is empty
    key = new_key()
    await storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    for start in (len(data), len(data) + 1, len(data) + 3 * CHUNK):
        assert await collect(storage.read(key, start, 10)) == []
    assert b"".join(await collect(storage.read(key, len(data) - 3, 10))) == data[-3:]


async def test_objects_from_before_encryption_stay_readable(
    storage_url: str, tmp_path: Path, repo: Repository, keys: str
) -> None:
    plain = await open_storage(settings_for(storage_url, tmp_path))
    data = MARKER + payload(100_000)
    key = new_key()
    await plain.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    await plain.close()
    encrypted = await open_storage(encrypted_settings(storage_url, tmp_path, keys), repo)
    try:
        assert (await encrypted.stat(key)).size == len(data)
        assert b"".join(await collect(encrypted.read(key, 5, 1000))) == data[5:1005]
        new = new_key()
        await encrypted.write(new, pieces(data), content_type="video/mp4", max_bytes=len(data))
        assert MARKER not in stored_bytes(storage_url, new)
        assert MARKER in stored_bytes(storage_url, key)
    finally:
        await encrypted.close()
    # Turning encryption off again while objects are encrypted is refused at start-up.
    with pytest.raises(ConfigError):
        await open_storage(settings_for(storage_url, tmp_path), repo)


async def test_rotation_rewrap_then_old_key_removed(
    storage_url: str, tmp_path: Path, repo: Repository
) -> None:
    old, new = master_key("k1"), master_key("k2")
    first = await open_storage(encrypted_settings(storage_url, tmp_path, old), repo)
    data = payload(CHUNK * 3 + 1)
    before = [new_key() for _ in range(5)]
    for key in before:
        await first.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
    await first.close()
    both = await open_storage(encrypted_settings(storage_url, tmp_path, f"{old},{new}"), repo)
    after = new_key()
    await both.write(after, pieces(data), content_type="video/mp4", max_bytes=len(data))
    assert await repo.master_key_ids() == {"k1", "k2"}
    # Removing k1 now would strand five objects: refused.
    with pytest.raises(ConfigError, match="k1"):
        await open_storage(encrypted_settings(storage_url, tmp_path, new), repo)
    at_rest = {key: stored_bytes(storage_url, key) for key in before}
    keyring = Keyring(encrypted_settings(storage_url, tmp_path, f"{old},{new}").encryption_keys)
    report = await rewrap_all(repo, keyring, batch=2)  # several batches
    assert (report.rewrapped, report.stale, report.unreadable) == (5, 0, ())
    assert (await rewrap_all(repo, keyring)).rewrapped == 0  # resumable: nothing left to do
    assert await repo.master_key_ids() == {"k2"}
    # The process that was serving keeps serving (its data keys never changed).
    assert b"".join(await collect(both.read(before[0], 10, 100))) == data[10:110]
    await both.close()
    only_new = await open_storage(encrypted_settings(storage_url, tmp_path, new), repo)
    try:
        for key in [*before, after]:
            assert b"".join(await collect(only_new.read(key, 0, len(data)))) == data
            assert stored_bytes(storage_url, key) == at_rest.get(
                key, stored_bytes(storage_url, key)
            )
    finally:
        await only_new.close()


async def test_a_master_key_with_another_secret_is_refused_at_start_up(
    storage_url: str, tmp_path: Path, repo: Repository
) -> None:
    """Started with it, the service would answer 503 for every object under the key and write
    new ones under a secret that is lost once the right one is back."""
    first = await open_storage(encrypted_settings(storage_url, tmp_path, master_key("k1")), repo)
    data = payload(1000)
    await first.write(new_key(), pieces(data), content_type="image/png", max_bytes=len(data))
    await first.close()
    with pytest.raises(ConfigError, match="'k1' does not unwrap"):
        await open_storage(encrypted_settings(storage_url, tmp_path, master_key("k1")), repo)


async def test_rewrap_goes_past_a_damaged_envelope(
    storage_url: str, tmp_path: Path, repo: Repository
) -> None:
    old, new = master_key("k1"), master_key("k2")
    first = await open_storage(encrypted_settings(storage_url, tmp_path, old), repo)
    data = payload(1000)
    keys = sorted(new_key() for _ in range(4))
    for key in keys:
        await first.write(key, pieces(data), content_type="image/png", max_bytes=len(data))
    await first.close()
    envelope = await repo.get_envelope(keys[1])
    assert envelope is not None
    flipped = bytes([envelope.wrapped_key[-1] ^ 1])
    await repo.put_envelope(
        dataclasses.replace(envelope, wrapped_key=envelope.wrapped_key[:-1] + flipped)
    )
    # One damaged row among good ones is no reason to refuse a start.
    both = await open_storage(encrypted_settings(storage_url, tmp_path, f"{old},{new}"), repo)
    await both.close()
    keyring = Keyring(encrypted_settings(storage_url, tmp_path, f"{old},{new}").encryption_keys)
    report = await rewrap_all(repo, keyring, batch=2)
    assert (report.rewrapped, report.damaged) == (3, (keys[1],))
    assert await repo.master_key_ids() == {"k1", "k2"}  # the damaged row stays under k1


async def test_s3_range_fetches_only_the_chunks_it_touches(
    s3_bucket: str, tmp_path: Path, repo: Repository, keys: str
) -> None:
    storage = await open_storage(encrypted_settings(s3_bucket, tmp_path, keys), repo)
    try:
        data = payload(2 * MiB)
        key = new_key()
        await storage.write(key, pieces(data), content_type="video/mp4", max_bytes=len(data))
        inner = storage._inner  # type: ignore[attr-defined]
        _bodies, ranges = record_gets(inner)
        start, length = 1_000_000, 64 * 1024
        got = b"".join(await collect(storage.read(key, start, length)))
        assert got == data[start : start + length]
        first, last = start // CHUNK, (start + length - 1) // CHUNK
        begin, end = HEADER + first * SEALED, HEADER + (last + 1) * SEALED - 1
        assert ranges == [f"bytes={begin}-{end}"]
        assert end - begin + 1 < length + 2 * SEALED
    finally:
        await storage.close()


async def test_missing_envelope_database_is_refused(storage_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        await open_storage(encrypted_settings(storage_url, tmp_path, master_key("k1")))


async def test_absent_object_with_envelope_is_not_found(storage: Storage) -> None:
    key = new_key()
    await storage.write(key, pieces(b"abc"), content_type="image/png", max_bytes=3)
    await storage._inner.delete(key)  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        await collect(storage.read(key, 0, 3))


async def test_envelope_rows_on_both_engines(repository: Repository) -> None:
    from media.models import Envelope
    from media.storage.chunked import FORMAT

    keys = sorted(new_key() for _ in range(3))
    try:
        for index, key in enumerate(keys):
            envelope = Envelope(
                key, FORMAT, "k1" if index else "k0", os.urandom(44), os.urandom(56)
            )
            await repository.put_envelope(envelope)
            assert await repository.get_envelope(key) == envelope
        assert await repository.master_key_ids() == {"k0", "k1"}
        pending = await repository.envelopes_to_rewrap("k1", "", 10)
        assert [e.storage_key for e in pending] == [keys[0]]
        assert await repository.envelopes_to_rewrap("k1", keys[0], 10) == ()
        moved = Envelope(keys[0], FORMAT, "k1", os.urandom(44), pending[0].header)
        assert await repository.rewrap_envelope(pending[0], moved)
        assert not await repository.rewrap_envelope(pending[0], moved)  # compare-and-set
        assert await repository.get_envelope(keys[0]) == moved
        await repository.delete_envelope(keys[0])
        await repository.delete_envelope(keys[0])
        assert await repository.get_envelope(keys[0]) is None
        assert await repository.master_key_ids() == {"k1"}
    finally:
        # The PostgreSQL database is shared with services that start without keys.
        for key in keys:
            await repository.delete_envelope(key)


@pytest.mark.parametrize("tail", [0, 1, CHUNK - 1, CHUNK])
async def test_encrypted_parts_at_their_place(
    storage: Storage, storage_url: str, tail: int
) -> None:
    part = 5 * MiB
    data = MARKER + payload(2 * part + tail - len(MARKER))
    key = new_key()
    upload = await storage.create_multipart(key, content_type="video/mp4")
    count = 3 if tail else 2
    chunks = [data[i * part : (i + 1) * part] for i in range(count)]
    for number in reversed(range(1, count + 1)):
        body = chunks[number - 1]
        slot = PartSlot(number, (number - 1) * part, len(body), last=number == count)
        sent = await storage.write_part(key, upload, slot, pieces(body))
        assert sent.size == len(body)
    listed = await storage.list_parts(key, upload)
    assert [p.size for p in listed] == [len(c) for c in chunks]
    info = await storage.complete_multipart(key, upload, listed)
    assert info.size == len(data)
    at_rest = stored_bytes(storage_url, key)
    assert len(at_rest) == ciphertext_size(len(data)) and MARKER not in at_rest
    for start, length in [(0, 10), (part - 5, 10), (2 * part - 3, 3 + tail), (len(data) - 1, 5)]:
        got = b"".join(await collect(storage.read(key, start, length)))
        assert got == data[start : start + length]
    assert b"".join(await collect(storage.read(key, 0, len(data)))) == data


async def test_a_last_part_not_sent_as_last_is_refused(storage: Storage) -> None:
    part = 5 * MiB
    data = payload(part)
    key = new_key()
    upload = await storage.create_multipart(key, content_type="video/mp4")
    await storage.write_part(key, upload, PartSlot(1, 0, part), pieces(data))
    with pytest.raises(CorruptObject):
        await storage.complete_multipart(key, upload, await storage.list_parts(key, upload))


async def test_collector_removes_envelopes_of_writes_that_never_stored(tmp_path: Path) -> None:
    import dataclasses
    import uuid
    from datetime import UTC, datetime, timedelta

    from media.db import migrate
    from media.models import Envelope
    from media.service.collector import Collector
    from media.storage.chunked import FORMAT
    from server.lifecycle import dev_issuer, open_dependencies
    from tests.support.app import settings_for as app_settings

    base = "http://127.0.0.1:9"
    settings = app_settings(
        tmp_path / "data", 9, MEDIA_ENCRYPTION_KEYS=master_key("k1"), MEDIA_ENV="development"
    )
    await migrate(settings)
    async with open_dependencies(settings, base, dev_issuer(settings, base)) as deps:
        repository, storage = deps.service.parts.repository, deps.storage
        stored = uuid.uuid4().hex  # an object that exists: the object pass decides about it
        await storage.write(stored, _chunks(b"kept"), content_type="image/png", max_bytes=4)
        crashed = uuid.uuid4().hex  # a row whose write never stored a byte
        await repository.put_envelope(Envelope(crashed, FORMAT, "k1", os.urandom(44), b"x" * 56))
        assert await deps.service.collector.collect() == 0
        assert await repository.get_envelope(crashed) is not None  # young: may still be written
        later = datetime.now(UTC) + timedelta(hours=3)
        await Collector(dataclasses.replace(deps.service.parts, clock=lambda: later)).collect()
        assert await repository.get_envelope(crashed) is None
        assert await storage.keys() == []  # the unnamed object went too, with its envelope
        assert await repository.get_envelope(stored) is None


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
