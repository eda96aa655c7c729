"""Chunked AEAD at rest: C2SP chunked-encryption v1, Cobblestone-128 (docs/encryption.md).

An object is `salt[24] || commitment[32] || chunk_0 || ... || chunk_n`; each chunk seals 16 KiB of
plaintext with AES-128-GCM under a nonce derived from its index; the final chunk is always shorter
than 16 KiB (possibly empty), which is what makes truncation and extension detectable. Pure and
synchronous: the storage layer decides where it runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.cobblestone import Cobblestone128Decryptor
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from media.errors import CorruptObject
from media.storage.buffers import Recycler

FORMAT = "c2sp-ce-v1/aes-128-gcm/hkdf-sha512"
CHUNK = 16 * 1024  # plaintext bytes per chunk (fixed by the construction)
TAG = 16
SEALED = CHUNK + TAG  # bytes of one full chunk at rest
SALT = 24
COMMITMENT = 32
HEADER = SALT + COMMITMENT
KEY = 16  # AES-128 data key
NONCE = 12
MAX_CHUNKS = 1 << 38  # the spec's counter limit (4 PiB)
_INFO = b"c2sp.org/chunked-encryption@v1+AEAD_AES_128_GCM\x00"


def derive(input_key: bytes, salt: bytes, context: bytes) -> tuple[bytes, bytes, bytes]:
    """(key, base nonce, commitment): HKDF-Expand(SHA-512) of the input key, salt and context."""
    if len(input_key) != KEY or len(salt) != SALT:
        raise ValueError("input key must be 16 bytes and salt 24 bytes")
    # SHA-512 is the hash of pyca's Cobblestone-128, so its output decrypts with ours and back.
    out = HKDFExpand(hashes.SHA512(), KEY + NONCE + COMMITMENT, _INFO + salt + context).derive(
        input_key
    )
    return out[:KEY], out[KEY : KEY + NONCE], out[KEY + NONCE :]


def new_header(input_key: bytes, context: bytes, salt: bytes | None = None) -> bytes:
    """A fresh `salt || commitment` for one object (random salt unless given, for test vectors)."""
    salt = os.urandom(SALT) if salt is None else salt
    return salt + derive(input_key, salt, context)[2]


@dataclass(frozen=True, slots=True)
class ChunkCipher:
    """The per-object AEAD state: seal or open chunk i at any position (random access)."""

    aead: AESGCM
    base_nonce: int
    header: bytes
    name: str  # what to call the object in errors (its storage key)
    input_key: bytes = field(repr=False)  # StreamOpener derives its own state from these two
    context: bytes

    @classmethod
    def open(cls, input_key: bytes, header: bytes, context: bytes, name: str) -> ChunkCipher:
        """Derive from the header; CorruptObject unless its commitment matches (checked first)."""
        if len(header) != HEADER:
            raise CorruptObject("bad header length", dependency="storage", key=name)
        key, nonce, commitment = derive(input_key, header[:SALT], context)
        if not constant_time.bytes_eq(commitment, header[SALT:]):
            raise CorruptObject("key commitment mismatch", dependency="storage", key=name)
        return cls(AESGCM(key), int.from_bytes(nonce, "big"), header, name, input_key, context)

    def nonce(self, index: int) -> bytes:
        """The nonce of chunk `index`: base nonce XOR index, big-endian."""
        if not 0 <= index < MAX_CHUNKS:
            raise CorruptObject("chunk index out of range", dependency="storage", key=self.name)
        return (self.base_nonce ^ index).to_bytes(NONCE, "big")

    def seal(self, index: int, plaintext: bytes | memoryview) -> bytes:
        """Chunk `index` at rest: AES-GCM ciphertext followed by its tag, AAD empty."""
        return self.aead.encrypt(self.nonce(index), plaintext, None)

    def open_chunk(self, index: int, sealed: bytes | memoryview, *, final: bool) -> bytes:
        """The plaintext of chunk `index`; CorruptObject when tampered, moved, cut or misplaced."""
        out = bytearray(max(0, len(sealed) - TAG))
        self.open_into(index, sealed, memoryview(out), final)
        return bytes(out)

    def open_into(
        self, index: int, sealed: bytes | memoryview, out: memoryview, final: bool
    ) -> None:
        """Decrypt chunk `index` into `out` (its exact plaintext size); CorruptObject otherwise."""
        size = len(sealed)
        # A full chunk is never final, and only the final chunk may be short (C2SP truncation rule).
        if (final and not TAG <= size < SEALED) or (not final and size != SEALED):
            raise CorruptObject(
                "chunk has the wrong length", dependency="storage", key=self.name, chunk=index
            )
        try:
            self.aead.decrypt_into(self.nonce(index), sealed, None, out)
        except InvalidTag:
            raise CorruptObject(
                "chunk failed authentication", dependency="storage", key=self.name, chunk=index
            ) from None


def ciphertext_size(plain: int) -> int:
    """Bytes at rest of a `plain`-byte object: header, full chunks, one short final chunk."""
    return HEADER + (plain // CHUNK) * SEALED + (plain % CHUNK) + TAG


def plaintext_size(stored: int) -> int | None:
    """The plaintext size of a `stored`-byte object, or None when no valid object has that size."""
    body = stored - HEADER
    if body < TAG:
        return None
    full, last = divmod(body, SEALED)
    if last < TAG:  # ends on a chunk boundary (truncated) or inside a tag
        return None
    return full * CHUNK + last - TAG


@dataclass(frozen=True, slots=True)
class Span:
    """The stored bytes that hold a plaintext range: whole chunks first..last."""

    first: int  # index of the first chunk
    offset: int  # where chunk `first` starts at rest
    length: int  # bytes at rest up to the end of chunk `last`
    skip: int  # plaintext bytes of chunk `first` before the range


def span(start: int, length: int) -> Span:
    """Map plaintext [start, start+length) to the chunks holding it (length > 0)."""
    first, skip = divmod(start, CHUNK)
    last = (start + length - 1) // CHUNK
    return Span(first, HEADER + first * SEALED, (last - first + 1) * SEALED, skip)


class Sealer:
    """Streaming encryption from chunk `first`: plaintext in, bytes at rest out.

    An object is sealed from chunk 0 with its header first; a part of one (whole chunks at their
    place in the object) from its first chunk, without the header unless it is the first part."""

    def __init__(self, cipher: ChunkCipher, first: int = 0, *, header: bool = True) -> None:
        self._cipher = cipher
        self._index = first
        self._pending = b""
        self._started = not header

    def feed(self, data: bytes) -> bytes:
        """Bytes at rest for every full chunk now complete (the header first)."""
        out = []
        if not self._started:
            self._started = True
            out.append(self._cipher.header)
        buffer = self._pending + data if self._pending else data
        view = memoryview(buffer)
        full = len(buffer) // CHUNK
        for n in range(full):
            out.append(self._cipher.seal(self._index, view[n * CHUNK : (n + 1) * CHUNK]))
            self._index += 1
        self._pending = bytes(view[full * CHUNK :])
        return b"".join(out)

    def finish(self, *, final: bool = True) -> bytes:
        """The rest: with `final`, the short final chunk (empty plaintext when the size is a
        multiple of 16 KiB); without, nothing more (a partial chunk left over is dropped, so
        the bytes at rest come out short and the store refuses them)."""
        head = self.feed(b"")
        if not final:
            return head
        return head + self._cipher.seal(self._index, self._pending)


def part_layout(number: int, offset: int, size: int, *, last: bool) -> tuple[int, int, bool]:
    """(offset at rest, size at rest, ends the object) of a plaintext part that starts at a chunk
    boundary; the first part carries the header, the part that ends the object its final chunk."""
    if offset % CHUNK:
        raise ValueError("a part must start at a multiple of 16 KiB")
    final = last or size % CHUNK != 0  # only the last part can end inside a chunk
    stored = (size // CHUNK) * SEALED + ((size % CHUNK) + TAG if final else 0)
    if number == 1:
        return 0, HEADER + stored, final
    return HEADER + (offset // CHUNK) * SEALED, stored, final


def part_plaintext_size(number: int, stored: int) -> int:
    """The plaintext size of a part that has `stored` bytes at rest."""
    body = stored - (HEADER if number == 1 else 0)
    full, rest = divmod(max(body, 0), SEALED)
    return full * CHUNK + max(rest - TAG, 0)


class Opener:
    """Streaming decryption of consecutive chunks from index `first`, fed in pieces of any size.

    Only the plaintext window [skip, skip+length) of those chunks is returned; every chunk is
    authenticated all the same, before any byte of it is returned. Whole chunks are decrypted
    straight into the buffer returned (a new one per call: the caller may keep it)."""

    def __init__(
        self,
        cipher: ChunkCipher,
        first: int,
        skip: int = 0,
        length: int | None = None,
        work: bytearray | None = None,
    ) -> None:
        self._cipher = cipher
        self.index = first
        self._skip = skip  # plaintext bytes still to drop (inside the first chunk)
        self._left = length  # plaintext bytes still wanted (None: all)
        self._pending = bytearray()
        # Scratch space for chunks only partly wanted; the caller may share one among readers,
        # since every use of it ends before feed() returns.
        self._work = work if work is not None and len(work) >= CHUNK else bytearray(CHUNK)
        self.received = 0

    def feed(self, data: bytes) -> bytearray:
        """The wanted plaintext of every chunk now complete; a partial chunk waits for more."""
        self.received += len(data)
        view = memoryview(data)
        chunks: list[memoryview] = []
        if self._pending:
            take = min(SEALED - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < SEALED:
                return bytearray()
            chunks.append(memoryview(self._pending))  # a new one is started below
            self._pending = bytearray()
        full = len(view) // SEALED
        chunks += [view[n * SEALED : (n + 1) * SEALED] for n in range(full)]
        if full * SEALED < len(view):
            self._pending += view[full * SEALED :]
        return self._open_full(chunks) if chunks else bytearray()

    def finish(self, *, at_end: bool) -> bytearray:
        """What is left: the final short chunk when the object ended (`at_end`), else nothing."""
        if not at_end:
            return bytearray()
        if not self._pending:
            # The object ended on a chunk boundary: its short final chunk was cut off.
            raise CorruptObject(
                "object truncated", dependency="storage", key=self._cipher.name, chunk=self.index
            )
        last = memoryview(self._pending)
        self._pending = bytearray()
        size = max(0, len(last) - TAG)
        low = min(self._skip, size)
        high = size if self._left is None else min(size, low + self._left)
        plain = memoryview(self._work)[:size]
        self._cipher.open_into(self.index, last, plain, True)  # checks the final chunk's length
        self.index += 1
        self._skip -= low
        if self._left is not None:
            self._left -= high - low
        return bytearray(plain[low:high])

    def _open_full(self, chunks: list[memoryview]) -> bytearray:
        """Open full (never final) chunks, each exactly SEALED bytes as feed() cuts them: the hot
        loop of every range, one AES-GCM call per chunk and as little else as possible."""
        cipher = self._cipher
        index, skip = self.index, self._skip
        total = len(chunks) * CHUNK - skip
        wanted = total if self._left is None else min(total, self._left)
        out = bytearray(wanted)
        target, scratch = memoryview(out), memoryview(self._work)[:CHUNK]
        if index + len(chunks) > MAX_CHUNKS:
            raise CorruptObject("chunk index out of range", dependency="storage", key=cipher.name)
        decrypt_into, base = cipher.aead.decrypt_into, cipher.base_nonce
        position = 0
        try:
            for chunk in chunks:
                nonce = (base ^ index).to_bytes(NONCE, "big")
                count = min(CHUNK - skip, wanted - position)
                if count == CHUNK:
                    decrypt_into(nonce, chunk, None, target[position : position + CHUNK])
                else:  # partly wanted (an edge of the range), or not at all: through scratch
                    decrypt_into(nonce, chunk, None, scratch)
                    target[position : position + count] = scratch[skip : skip + count]
                position += count
                skip = 0
                index += 1
        except InvalidTag:
            raise CorruptObject(
                "chunk failed authentication", dependency="storage", key=cipher.name, chunk=index
            ) from None
        self.index, self._skip = index, 0
        if self._left is not None:
            self._left -= wanted
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete chunk held back."""
        return len(self._pending)


class StreamOpener:
    """Decryption of a read from the start of an object by pyca's Cobblestone-128 decryptor (the
    same construction), for long reads: many chunks per call, and the call releases the GIL, so
    a worker thread decrypts while the event loop sends.

    The plaintext comes out in buffers of `group` whole chunks (the pieces a plaintext read
    yields), decrypted straight into them; a buffer handed out is filled again only once let go
    (media/storage/buffers.py).

    The guarantees are Opener's: every chunk is authenticated before any byte of it is returned
    (a failing call raises and its buffer is dropped), and only `finish(at_end=True)` takes the
    short final chunk, so an object cut at a chunk boundary is refused."""

    def __init__(self, cipher: ChunkCipher, skip: int, length: int, group: int) -> None:
        self._cipher = cipher
        self._decryptor = Cobblestone128Decryptor(cipher.input_key, cipher.context)
        self._decryptor.update(cipher.header)  # checks the commitment; no plaintext yet
        self._skip = skip  # plaintext bytes still to drop (inside the first chunk)
        self._left = length  # plaintext bytes still wanted
        self._size = group * CHUNK
        self._buffer: bytearray | None = None  # being filled
        self._filled = 0
        self._buffers = Recycler(self._size)
        self.received = 0  # stored bytes after the header

    def open_pieces(self, pieces: Sequence[bytes | memoryview]) -> list[bytearray]:
        """The wanted plaintext of the chunks the pieces complete, in buffers of whole groups."""
        out: list[bytearray] = []
        for data in pieces:
            view = memoryview(data)
            while view:
                if self._buffer is None:
                    self._buffer = self._buffers.take()
                # Stored bytes that fill the buffer exactly (the decryptor takes the rest of a
                # chunk begun in the last call first).
                need = (self._size - self._filled) // CHUNK * SEALED - self.received % SEALED
                part, view = view[:need], view[need:]
                target = memoryview(self._buffer)[self._filled :]
                try:
                    self._filled += self._decryptor.update_into(part, target)
                except InvalidTag:
                    raise self._failed(part) from None
                finally:
                    target.release()
                self.received += len(part)
                if self._filled == self._size:
                    self._hand_out(self._buffer, out)
        return out

    def finish(self, *, at_end: bool) -> list[bytearray]:
        """What is left: a part-filled buffer and, when the object ended (`at_end`), the final
        short chunk."""
        out: list[bytearray] = []
        if self._buffer is not None and self._filled:
            del self._buffer[self._filled :]
            self._hand_out(self._buffer, out)
        if not at_end:
            return out
        index, rest = divmod(self.received, SEALED)
        if not rest:
            # The object ended on a chunk boundary: its short final chunk was cut off.
            raise CorruptObject(
                "object truncated", dependency="storage", key=self._cipher.name, chunk=index
            )
        try:
            final = bytearray(self._decryptor.finalize())
        except InvalidTag:
            detail = "chunk failed authentication" if rest >= TAG else "chunk has the wrong length"
            raise CorruptObject(
                detail, dependency="storage", key=self._cipher.name, chunk=index
            ) from None
        self._hand_out(final, out)
        return out

    def _hand_out(self, buffer: bytearray, out: list[bytearray]) -> None:
        """Cut `buffer` to the wanted window (in place) and add it to `out`."""
        if self._skip:
            cut = min(self._skip, len(buffer))
            del buffer[:cut]
            self._skip -= cut
        if len(buffer) > self._left:
            del buffer[self._left :]
        self._left -= len(buffer)
        if buffer:
            out.append(buffer)
            if len(buffer) == self._size:
                self._buffers.given(buffer)
        self._buffer = None
        self._filled = 0

    def _failed(self, part: memoryview) -> CorruptObject:
        """The error naming a chunk that failed in `part`: the first of the chunks wholly inside
        it that fails again here, or else the chunk begun before `part` that it completes."""
        first, begun = divmod(self.received, SEALED)
        index = first + 1 if begun else first
        low = SEALED - begun if begun else 0
        while low + SEALED <= len(part):
            try:
                self._cipher.open_chunk(index, part[low : low + SEALED], final=False)
            except CorruptObject as exc:
                return exc
            index += 1
            low += SEALED
        return CorruptObject(
            "chunk failed authentication", dependency="storage", key=self._cipher.name, chunk=first
        )
