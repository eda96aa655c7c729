"""Master keys (MEDIA_ENCRYPTION_KEYS): wrapping per-object data keys, and re-wrapping them."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from media.config import MasterKey
from media.errors import ConfigError, CorruptObject
from media.models import Envelope

logger = logging.getLogger("media.encryption")

WRAP_NONCE = 12
_WRAP_AAD = b"media-service/data-key/v1|"


class EnvelopeStore(Protocol):
    """Where envelopes live: one row per encrypted object, keyed by its storage key.

    Methods return awaitables (the repository's are wrapped coroutines)."""

    def get_envelope(self, storage_key: str) -> Awaitable[Envelope | None]:
        """The envelope of an object, or None when it is stored in plaintext (or absent)."""
        ...

    def put_envelope(self, envelope: Envelope) -> Awaitable[None]:
        """Insert or replace the envelope of an object."""
        ...

    def delete_envelope(self, storage_key: str) -> Awaitable[None]:
        """Remove an envelope; absent is fine."""
        ...

    def master_key_ids(self) -> Awaitable[frozenset[str]]:
        """Every master key id some envelope still names."""
        ...

    def envelopes_under(self, master_key_id: str, limit: int) -> Awaitable[tuple[Envelope, ...]]:
        """Up to `limit` envelopes whose data key is wrapped under `master_key_id`."""
        ...

    def envelopes_to_rewrap(
        self, newest: str, after: str, limit: int
    ) -> Awaitable[tuple[Envelope, ...]]:
        """Up to `limit` envelopes not under `newest`, storage keys above `after`, in key order."""
        ...

    def rewrap_envelope(self, old: Envelope, new: Envelope) -> Awaitable[bool]:
        """Replace the wrapped key only if the row still holds `old`'s; False when it moved on."""
        ...


class Keyring:
    """The configured master keys; the last one wraps new data keys, every one unwraps."""

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        if not keys:
            raise ConfigError("no encryption keys", variable="MEDIA_ENCRYPTION_KEYS")
        self._keys = {key.id: AESGCM(key.secret) for key in keys}
        self.newest = keys[-1].id

    @property
    def ids(self) -> frozenset[str]:
        """Every configured key id."""
        return frozenset(self._keys)

    def wrap(
        self, data_key: bytes, storage_key: str, nonce: bytes | None = None
    ) -> tuple[str, bytes]:
        """(master key id, nonce || sealed data key) under the newest master key.

        The nonce is random unless given (known-answer vectors only)."""
        nonce = os.urandom(WRAP_NONCE) if nonce is None else nonce
        sealed = self._keys[self.newest].encrypt(nonce, data_key, _aad(self.newest, storage_key))
        return self.newest, nonce + sealed

    def unwrap(self, envelope: Envelope) -> bytes:
        """The data key of an envelope; ConfigError when its master key is not configured."""
        aead = self._keys.get(envelope.master_key_id)
        if aead is None:
            raise ConfigError(
                f"master key {envelope.master_key_id!r} is not in MEDIA_ENCRYPTION_KEYS",
                variable="MEDIA_ENCRYPTION_KEYS",
            )
        wrapped = envelope.wrapped_key
        try:
            return aead.decrypt(
                wrapped[:WRAP_NONCE],
                wrapped[WRAP_NONCE:],
                _aad(envelope.master_key_id, envelope.storage_key),
            )
        except InvalidTag:
            # A key wrapped for another object (or altered) never unwraps here.
            raise CorruptObject(
                "data key failed authentication", dependency="storage", key=envelope.storage_key
            ) from None

    def rewrapped(self, envelope: Envelope) -> Envelope:
        """The same data key, wrapped under the newest master key."""
        key_id, wrapped = self.wrap(self.unwrap(envelope), envelope.storage_key)
        return replace(envelope, master_key_id=key_id, wrapped_key=wrapped)


def _aad(key_id: str, storage_key: str) -> bytes:
    # Binds a wrapped key to its object and its master key id: moving it to another row fails.
    return _WRAP_AAD + key_id.encode() + b"|" + storage_key.encode()


# Data keys a start-up check tries to unwrap per master key: one damaged row alone is no reason
# to refuse, every one failing is a wrong secret.
SAMPLED_ENVELOPES = 3


async def check_master_keys(keyring: Keyring, store: EnvelopeStore) -> None:
    """ConfigError unless each configured master key unwraps a data key it wrapped.

    A key id given with another secret than the one its data keys were wrapped with would
    otherwise start: every object under it would then answer 503, and new objects would be
    written under the wrong secret and be lost once the right one is back."""
    for key_id in sorted(keyring.ids):
        sample = await store.envelopes_under(key_id, SAMPLED_ENVELOPES)
        if not sample:
            continue
        for envelope in sample:
            try:
                keyring.unwrap(envelope)
                break
            except CorruptObject:
                continue
        else:
            raise ConfigError(
                f"master key {key_id!r} does not unwrap the data keys stored under it: is its"
                " secret the one they were wrapped with?",
                variable="MEDIA_ENCRYPTION_KEYS",
            )


@dataclass(frozen=True, slots=True)
class RewrapReport:
    """What one `rewrap-keys` run did."""

    rewrapped: int
    stale: int  # rows that changed under us (another run); picked up again next time
    unreadable: tuple[str, ...]  # master key ids named by envelopes but not configured
    damaged: tuple[str, ...] = ()  # storage keys whose wrapped data key fails authentication


async def rewrap_all(store: EnvelopeStore, keyring: Keyring, batch: int = 200) -> RewrapReport:
    """Re-wrap every data key under the newest master key, row by row: resumable, online-safe.

    Objects are never rewritten; readers holding an old unwrapped key keep working, and each row
    is updated only if it still holds what was read, so concurrent runs cannot lose a write."""
    rewrapped = stale = 0
    unreadable: set[str] = set()
    damaged: list[str] = []
    after = ""
    while True:
        rows = await store.envelopes_to_rewrap(keyring.newest, after, batch)
        if not rows:
            break
        for envelope in rows:
            after = envelope.storage_key
            if envelope.master_key_id not in keyring.ids:
                unreadable.add(envelope.master_key_id)
                continue
            try:
                moved = keyring.rewrapped(envelope)
            except CorruptObject:  # this row is damaged; the others still move on
                damaged.append(envelope.storage_key)
                continue
            if await store.rewrap_envelope(envelope, moved):
                rewrapped += 1
            else:
                stale += 1
        logger.info("rewrapped %d data key(s) so far", rewrapped)
    return RewrapReport(rewrapped, stale, tuple(sorted(unreadable)), tuple(damaged))
