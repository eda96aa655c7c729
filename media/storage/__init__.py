"""Object storage: the Storage protocol and the backend chosen by MEDIA_STORAGE_URL."""

from __future__ import annotations

from media.config import Settings
from media.storage.base import Storage, check_key, is_key

__all__ = ["Storage", "check_key", "is_key", "open_storage"]


async def open_storage(settings: Settings) -> Storage:
    """Open the backend named by settings.storage: a local folder (file://) or S3 (s3://)."""
    url = settings.storage
    if url.scheme == "s3":
        # Imported here so the embedded default never pays for loading boto3.
        from media.storage.s3 import open_s3

        return await open_s3(settings)
    from media.storage.local import open_local

    return await open_local(settings)
