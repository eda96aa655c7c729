"""Object storage: the Storage protocol and the backend chosen by MEDIA_STORAGE_URL."""

from __future__ import annotations

from media.config import Settings
from media.errors import ConfigError
from media.storage.base import Storage, check_key, chunk_bytes, is_key
from media.storage.keyring import EnvelopeStore

__all__ = ["EnvelopeStore", "Storage", "check_key", "is_key", "open_storage"]


async def open_storage(settings: Settings, envelopes: EnvelopeStore | None = None) -> Storage:
    """Open the backend named by settings.storage: a local folder (file://) or S3 (s3://).

    With `envelopes` (the repository), MEDIA_ENCRYPTION_KEYS turns on encryption at rest; without
    keys, objects are stored in plaintext, which is refused once any object is encrypted."""
    storage = await _open_backend(settings)
    if envelopes is None:
        if settings.encryption_keys:
            await storage.close()
            raise ConfigError(
                "encryption needs the database of envelopes", variable="MEDIA_ENCRYPTION_KEYS"
            )
        return storage
    try:
        return await _encrypted(storage, settings, envelopes)
    except BaseException:
        await storage.close()
        raise


async def _encrypted(storage: Storage, settings: Settings, envelopes: EnvelopeStore) -> Storage:
    in_use = await envelopes.master_key_ids()
    missing = sorted(in_use - {key.id for key in settings.encryption_keys})
    if missing:
        # Serving would fail on every object under these keys: refuse to start instead.
        raise ConfigError(
            f"objects are encrypted under master key(s) {missing} that are not configured; "
            "restore them, or run rewrap-keys while they still are",
            variable="MEDIA_ENCRYPTION_KEYS",
        )
    if not settings.encryption_keys:
        return storage
    from media.storage.encrypted import EncryptedStorage
    from media.storage.keyring import Keyring, check_master_keys

    keyring = Keyring(settings.encryption_keys)
    await check_master_keys(keyring, envelopes)
    return EncryptedStorage(storage, keyring, envelopes, chunk_bytes=chunk_bytes(settings))


async def _open_backend(settings: Settings) -> Storage:
    url = settings.storage
    if url.scheme == "s3":
        # Imported here so the embedded default never pays for loading boto3.
        from media.storage.s3 import open_s3

        return await open_s3(settings)
    from media.storage.local import open_local

    return await open_local(settings)
