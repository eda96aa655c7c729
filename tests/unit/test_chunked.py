"""The chunked-AEAD format: known answers, pyca's Cobblestone-128, boundaries, tampering."""

from __future__ import annotations

import base64
import hashlib
import os
import random
from pathlib import Path

import pytest
from cryptography.cobblestone import Cobblestone128Decryptor, Cobblestone128Encryptor

from media.config import MasterKey
from media.errors import ConfigError, CorruptObject
from media.models import Envelope
from media.storage.chunked import (
    CHUNK,
    FORMAT,
    HEADER,
    SEALED,
    ChunkCipher,
    Opener,
    Sealer,
    StreamOpener,
    ciphertext_size,
    new_header,
    plaintext_size,
    span,
)
from media.storage.encrypted import context
from media.storage.keyring import Keyring

DOC = Path(__file__).resolve().parents[2] / "docs" / "encryption.md"
VECTOR_KEY = bytes(range(16))
VECTOR_SALT = bytes(range(100, 124))
VECTOR_STORAGE_KEY = "0123456789abcdef0123456789abcdef"
BOUNDARY_SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 7, 9 * CHUNK]


def pattern(size: int) -> bytes:
    """Plaintext byte i = i mod 251, as in the documented vectors."""
    return bytes(i % 251 for i in range(size))


def cipher_for(name: str = VECTOR_STORAGE_KEY, key: bytes = VECTOR_KEY) -> ChunkCipher:
    """A cipher with a fresh random salt."""
    return ChunkCipher.open(key, new_header(key, context(name)), context(name), name)


def seal(cipher: ChunkCipher, data: bytes, piece: int = 10_000) -> bytes:
    """Stored bytes of `data`, fed in pieces like a request body."""
    sealer = Sealer(cipher)
    out = [sealer.feed(data[i : i + piece]) for i in range(0, len(data), piece)]
    return b"".join(out) + sealer.finish()


def open_all(cipher: ChunkCipher, stored: bytes, piece: int = 7_777) -> bytes:
    """Plaintext of a whole stored object, fed in odd pieces."""
    opener = Opener(cipher, 0)
    body = stored[HEADER:]
    out = [opener.feed(body[i : i + piece]) for i in range(0, len(body), piece)]
    return b"".join(out) + opener.finish(at_end=True)


def read_range(
    cipher: ChunkCipher, stored: bytes, start: int, length: int, piece: int = 20_000
) -> bytes:
    """What a ranged read does: fetch the span's stored bytes, open them in pieces as they come."""
    where = span(start, length)
    data = stored[where.offset : where.offset + where.length]
    opener = Opener(cipher, where.first, where.skip, length)
    out = [opener.feed(data[i : i + piece]) for i in range(0, len(data), piece)]
    return b"".join(out) + opener.finish(at_end=len(data) < where.length)


def stream_range(
    cipher: ChunkCipher,
    stored: bytes,
    start: int,
    length: int,
    piece: int = 20_000,
    group: int = 3,
    batch: int = 2,
) -> bytes:
    """What a long read from the start does: the span's stored bytes, opened by a StreamOpener
    in batches of pieces; every buffer it returns is copied out (a consumer that lets go)."""
    where = span(start, length)
    assert where.first == 0
    data = stored[where.offset : where.offset + where.length]
    opener = StreamOpener(cipher, where.skip, length, group)
    cut = [data[i : i + piece] for i in range(0, len(data), piece)]
    out = [
        bytes(buffer)
        for n in range(0, len(cut), batch)
        for buffer in opener.open_pieces(cut[n : n + batch])
    ]
    tail = opener.finish(at_end=len(data) < where.length)
    return b"".join(out) + b"".join(bytes(buffer) for buffer in tail)


def documented_vectors() -> list[list[str]]:
    """The lines of the vector block of docs/encryption.md."""
    text = DOC.read_text()
    block = text.split("## Known-answer vectors", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    return [line.split() for line in block.strip().splitlines()]


def test_documented_vectors() -> None:
    vectors = documented_vectors()
    assert len([v for v in vectors if v[0] == "chunked"]) >= 6
    ctx = context(VECTOR_STORAGE_KEY)
    for kind, *fields in vectors:
        if kind == "chunked":
            size, stored_size, digest = int(fields[0]), int(fields[1]), fields[2]
            header = new_header(VECTOR_KEY, ctx, VECTOR_SALT)
            stored = seal(ChunkCipher.open(VECTOR_KEY, header, ctx, "v"), pattern(size))
            assert len(stored) == stored_size == ciphertext_size(size)
            assert hashlib.sha256(stored).hexdigest() == digest
            if len(fields) > 3:
                assert stored.hex() == fields[3]
            # An independent implementation of the same construction reads it back.
            decryptor = Cobblestone128Decryptor(VECTOR_KEY, ctx)
            assert decryptor.update(stored) + decryptor.finalize() == pattern(size)
        else:
            assert kind == "wrap"
            key_id, wrapped = fields
            secret = base64.b64decode("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=")
            keyring = Keyring([MasterKey(key_id, secret)])
            nonce = bytes.fromhex(wrapped[:24])
            assert keyring.wrap(VECTOR_KEY, VECTOR_STORAGE_KEY, nonce) == (
                key_id,
                bytes.fromhex(wrapped),
            )
            envelope = Envelope(VECTOR_STORAGE_KEY, FORMAT, key_id, bytes.fromhex(wrapped), b"")
            assert keyring.unwrap(envelope) == VECTOR_KEY


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_round_trip_at_every_chunk_boundary(size: int) -> None:
    data = os.urandom(size)
    cipher = cipher_for()
    stored = seal(cipher, data)
    assert len(stored) == ciphertext_size(size)
    assert plaintext_size(len(stored)) == size
    assert open_all(cipher, stored) == data
    assert read_range(cipher, stored, 0, size + 100) == data


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_interoperates_with_pyca_cobblestone(size: int) -> None:
    data = os.urandom(size)
    input_key = os.urandom(16)
    ctx = context(VECTOR_STORAGE_KEY)
    encryptor = Cobblestone128Encryptor(input_key, ctx)
    theirs = encryptor.update(data) + encryptor.finalize()
    cipher = ChunkCipher.open(input_key, theirs[:HEADER], ctx, "x")
    assert open_all(cipher, theirs) == data
    if size:
        assert read_range(cipher, theirs, size // 2, size) == data[size // 2 :]
    ours = seal(cipher, data)  # same salt, so the same bytes
    assert ours == theirs


def test_every_range_of_a_small_object() -> None:
    data = os.urandom(2 * CHUNK + 3)
    cipher = cipher_for()
    stored = seal(cipher, data)
    # Every start, and lengths that end at, around and past each chunk boundary.
    ends = sorted({1, 2, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 2, len(data) + 9})
    for start in range(len(data) + 1):
        for end in ends:
            if end > start:
                got = read_range(cipher, stored, start, end - start, piece=SEALED + 7)
                assert got == data[start:end], (start, end)


def test_random_ranges_of_a_larger_object() -> None:
    data = os.urandom(40 * CHUNK + 1234)
    cipher = cipher_for()
    stored = seal(cipher, data)
    rng = random.Random(22)
    for _ in range(300):
        start = rng.randrange(len(data))
        length = rng.randrange(1, 200_000)
        assert read_range(cipher, stored, start, length) == data[start : start + length]


def test_span_maps_to_whole_chunks() -> None:
    where = span(CHUNK + 5, 10)
    assert (where.first, where.offset, where.length, where.skip) == (1, HEADER + SEALED, SEALED, 5)
    where = span(CHUNK - 1, 2)
    assert (where.first, where.length) == (0, 2 * SEALED)


def tampered(stored: bytes, position: int) -> bytes:
    """The stored bytes with one bit flipped."""
    changed = bytearray(stored)
    changed[position] ^= 0x01
    return bytes(changed)


def test_any_flipped_byte_fails() -> None:
    data = os.urandom(2 * CHUNK + 100)
    cipher = cipher_for()
    stored = seal(cipher, data)
    for position in [
        HEADER,
        HEADER + 1000,
        HEADER + SEALED - 1,
        HEADER + SEALED + 3,
        len(stored) - 1,
    ]:
        with pytest.raises(CorruptObject):
            open_all(cipher, tampered(stored, position))
    # Header bytes: the commitment check refuses them before any chunk is opened.
    for position in (0, 30, HEADER - 1):
        changed = tampered(stored, position)
        with pytest.raises(CorruptObject, match="commitment"):
            ChunkCipher.open(VECTOR_KEY, changed[:HEADER], context("k"), "k")


def test_dropped_swapped_and_truncated_chunks_fail() -> None:
    data = os.urandom(3 * CHUNK + 100)
    cipher = cipher_for()
    stored = seal(cipher, data)
    header, body = stored[:HEADER], stored[HEADER:]
    chunks = [body[i : i + SEALED] for i in range(0, len(body), SEALED)]
    assert len(chunks) == 4
    dropped = header + b"".join(chunks[:1] + chunks[2:])
    swapped = header + b"".join([chunks[1], chunks[0], *chunks[2:]])
    for bad in (dropped, swapped):
        with pytest.raises(CorruptObject):
            open_all(cipher, bad)
    for boundary in (1, 2, 3):  # cut right after a full chunk: no short final chunk
        cut = header + b"".join(chunks[:boundary])
        with pytest.raises(CorruptObject, match="truncated"):
            open_all(cipher, cut)
        assert plaintext_size(len(cut)) is None
        with pytest.raises(CorruptObject):  # a range reaching the missing end sees it too
            read_range(cipher, cut, boundary * CHUNK - 10, 100)
    with pytest.raises(CorruptObject):  # cut inside the final chunk
        open_all(cipher, stored[:-1])
    # A full chunk passed off as the final one, or the final as a full one.
    with pytest.raises(CorruptObject):
        cipher.open_chunk(0, chunks[0], final=True)
    with pytest.raises(CorruptObject):
        cipher.open_chunk(3, chunks[3], final=False)


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_stream_opener_reads_from_the_start(size: int) -> None:
    data = os.urandom(size)
    cipher = cipher_for()
    stored = seal(cipher, data)
    for piece, group in ((7_777, 1), (SEALED, 2), (SEALED + 1, 3), (100_000, 4)):
        assert stream_range(cipher, stored, 0, size + 100, piece, group) == data
    for start, length in ((0, 1), (5, CHUNK), (CHUNK - 1, 2), (17, 3 * CHUNK + 1)):
        got = stream_range(cipher, stored, start, length, piece=9_999)
        assert got == data[start : start + length], (start, length)


def test_stream_opener_fills_whole_groups() -> None:
    data = os.urandom(10 * CHUNK + 5)
    cipher = cipher_for()
    stored = seal(cipher, data)
    opener = StreamOpener(cipher, 0, len(data), 4)
    body = stored[HEADER:]
    out = opener.open_pieces([body[i : i + 30_000] for i in range(0, len(body), 30_000)])
    assert [len(buffer) for buffer in out] == [4 * CHUNK, 4 * CHUNK]
    rest = opener.finish(at_end=True)
    assert [len(buffer) for buffer in rest] == [2 * CHUNK, 5]
    assert b"".join([*out, *rest]) == data


def test_stream_opener_never_refills_a_buffer_still_held() -> None:
    data = os.urandom(40 * CHUNK)
    cipher = cipher_for()
    stored = seal(cipher, data)
    body = stored[HEADER:]
    opener = StreamOpener(cipher, 0, len(data), 2)
    held = opener.open_pieces([body[: 4 * SEALED]])  # kept, like a queued socket write
    view = memoryview(opener.open_pieces([body[4 * SEALED : 6 * SEALED]])[0])  # a view kept
    got = b""
    for n in range(6, 40, 2):
        for buffer in opener.open_pieces([body[n * SEALED : (n + 2) * SEALED]]):
            got += buffer  # then dropped, as a sender drops a piece once it is written
    assert b"".join(held) == data[: 4 * CHUNK]
    assert view == data[4 * CHUNK : 6 * CHUNK]
    assert got == data[6 * CHUNK :]


def test_stream_opener_refuses_tampering_and_truncation() -> None:
    data = os.urandom(12 * CHUNK + 100)
    cipher = cipher_for()
    stored = seal(cipher, data)
    # A flipped byte in chunk 5: the batch holding it returns nothing and names the chunk.
    bad = tampered(stored, HEADER + 5 * SEALED + 77)
    opener = StreamOpener(cipher, 0, len(data), 2)
    body = bad[HEADER:]
    good = opener.open_pieces([body[: 2 * SEALED + 9]])
    assert b"".join(good) == data[: 2 * CHUNK]
    with pytest.raises(CorruptObject, match="authentication") as failed:
        opener.open_pieces([body[2 * SEALED + 9 : 8 * SEALED]])
    assert failed.value.data["chunk"] == 5
    # Wherever the pieces are cut, a flipped byte anywhere fails, and no wrong byte comes out.
    for position in (HEADER, HEADER + SEALED - 1, HEADER + 7 * SEALED + 3, len(stored) - 1):
        for piece in (5_000, SEALED, 70_000):
            with pytest.raises(CorruptObject):
                stream_range(cipher, tampered(stored, position), 0, len(data), piece)
    header, chunks = stored[:HEADER], stored[HEADER:]
    for boundary in (1, 6, 12):  # cut right after a full chunk: no short final chunk
        cut = header + chunks[: boundary * SEALED]
        with pytest.raises(CorruptObject, match="truncated"):
            stream_range(cipher, cut, 0, len(data))
    with pytest.raises(CorruptObject):  # cut inside the final chunk
        stream_range(cipher, stored[:-1], 0, len(data))
    swapped = header + chunks[SEALED : 2 * SEALED] + chunks[:SEALED] + chunks[2 * SEALED :]
    with pytest.raises(CorruptObject):
        stream_range(cipher, swapped, 0, len(data))
    other = cipher_for(key=os.urandom(16))  # another data key for the same bytes
    with pytest.raises(CorruptObject):
        stream_range(other, other.header + chunks, 0, len(data))


def test_other_object_or_key_fails() -> None:
    data = os.urandom(CHUNK + 5)
    cipher = cipher_for("a" * 32)
    stored = seal(cipher, data)
    moved = ChunkCipher.open  # the same bytes under another storage key's context
    with pytest.raises(CorruptObject, match="commitment"):
        moved(VECTOR_KEY, stored[:HEADER], context("b" * 32), "b" * 32)
    other = cipher_for("a" * 32, key=os.urandom(16))
    with pytest.raises(CorruptObject):
        open_all(other, other.header + stored[HEADER:])


def test_wrapped_keys_are_bound_to_object_and_master_key() -> None:
    old, new = MasterKey("k1", os.urandom(32)), MasterKey("k2", os.urandom(32))
    keyring = Keyring([old, new])
    assert keyring.newest == "k2"
    data_key = os.urandom(16)
    key_id, wrapped = keyring.wrap(data_key, "a" * 32)
    envelope = Envelope("a" * 32, FORMAT, key_id, wrapped, b"")
    assert keyring.unwrap(envelope) == data_key
    with pytest.raises(CorruptObject):  # moved to another object's row
        keyring.unwrap(Envelope("b" * 32, FORMAT, key_id, wrapped, b""))
    with pytest.raises(CorruptObject):  # relabelled as wrapped by the other master key
        keyring.unwrap(Envelope("a" * 32, FORMAT, "k1", wrapped, b""))
    with pytest.raises(ConfigError):  # a master key that is not configured
        Keyring([old]).unwrap(envelope)
    rewrapped = Keyring([new, old]).rewrapped(envelope)
    assert rewrapped.master_key_id == "k1"
    assert Keyring([old]).unwrap(rewrapped) == data_key


def test_master_keys_setting() -> None:
    from media.config import load_settings

    first, second = os.urandom(32), os.urandom(32)
    raw = f"old:{base64.b64encode(first).decode()}, new:{base64.b64encode(second).decode()}"
    settings = load_settings({"MEDIA_ENCRYPTION_KEYS": raw})
    assert [(k.id, k.secret) for k in settings.encryption_keys] == [("old", first), ("new", second)]
    assert base64.b64encode(first).decode() not in repr(settings)
    assert load_settings({}).encryption_keys == ()
    good = base64.b64encode(first).decode()
    for bad in (
        "nocolon",
        f"bad id:{good}",
        "k1:not-base64!",
        f"k1:{base64.b64encode(os.urandom(16)).decode()}",
        f"k1:{good},k1:{good}",
        " , ",
    ):
        with pytest.raises(ConfigError) as caught:
            load_settings({"MEDIA_ENCRYPTION_KEYS": bad})
        assert caught.value.data["variable"] == "MEDIA_ENCRYPTION_KEYS"
