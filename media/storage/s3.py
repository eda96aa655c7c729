"""Storage in any S3-compatible store through boto3, every call in a dedicated thread pool."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import anyio
import anyio.to_thread
import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from urllib3.exceptions import HTTPError

from media.config import Settings, StorageUrl
from media.errors import ConfigError, Conflict, MediaError, NotFound, TooLarge, Unavailable
from media.models import ObjectInfo, PartInfo, PartSlot
from media.storage.base import (
    BlockingReader,
    check_key,
    check_range,
    chunk_bytes,
    is_key,
)
from media.storage.buffers import Recycler
from media.storage.s3_body import BodyReader

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import CompletedPartTypeDef

S3_READ_BYTES = 1024 * 1024  # per worker-thread hop; memory per stream stays O(1 MiB)


PART_BYTES = 8 * 1024 * 1024
CONNECT_TIMEOUT_S = 3.0
_STORE_ERRORS = (ClientError, BotoCoreError, HTTPError)
# RFC 9110 §14.4: Content-Range of a 206 (the unit is case-insensitive).
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_MISSING = frozenset({"NoSuchKey", "NoSuchUpload", "404", "NotFound"})
_T = TypeVar("_T")
_Addressing = Literal["auto", "virtual", "path"]
log = logging.getLogger(__name__)
_SESSION_LOCK = threading.Lock()


class S3Storage:
    """Objects under `prefix/` in one bucket; GETs are ranged, writes multipart beyond 8 MiB."""

    def __init__(
        self, client: S3Client, *, bucket: str, prefix: str, chunk_bytes: int, max_threads: int
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self._chunk = chunk_bytes
        # Own pool sized like the connection pool: anyio's shared 40 threads starve
        # (docs/stack-notes.md §8).
        self._limiter = anyio.CapacityLimiter(max_threads)

    async def stat(self, key: str) -> ObjectInfo:
        """HeadObject: size, etag without quotes, last_modified, content type."""
        head = await self._call(
            key, self._client.head_object, Bucket=self._bucket, Key=self._name(key)
        )
        return ObjectInfo(
            size=head["ContentLength"],
            etag=head["ETag"].strip('"'),
            last_modified=head["LastModified"].astimezone(UTC),
            content_type=head.get("ContentType"),
        )

    def read(self, key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Ranged GetObject, its body read into reused buffers in worker threads, one batch
        ahead; closed on exit."""
        name = self._name(key)
        check_range(start, length)
        # The pieces are bytearrays, as for local reads (media/storage/local.py).
        return cast("AsyncIterator[bytes]", self._read(key, name, start, length))

    async def _read(
        self, key: str, name: str, start: int, length: int
    ) -> AsyncIterator[bytes | bytearray]:
        if length == 0:
            await self.stat(key)  # still NotFound for an absent object
            return
        fetch = asyncio.ensure_future(self._call(key, self._get_range, name, start, length))
        try:
            # Shielded: a cancelled request must not leave the thread's body unclosed.
            body = await asyncio.shield(fetch)
        except asyncio.CancelledError:
            fetch.add_done_callback(_close_fetched)
            raise
        if body is None:
            return
        buffers = Recycler(self._chunk)
        # Every batch is read by a thread this generator waits for, even when it is closed or
        # cancelled: the body is closed only once no thread reads it, and the thread keeps its
        # slot of the pool until then. One batch at a time uses `buffers`.
        reading: asyncio.Future[list[bytearray]] | None = None
        try:
            # The first batch is one chunk (time to first byte); then about 1 MiB per thread hop,
            # the next batch read while this one is sent: at most one batch ahead per stream.
            reading = asyncio.ensure_future(self._call(key, body.batch, buffers, self._chunk))
            blocks = await asyncio.shield(reading)
            reading = None
            while blocks:
                if not body.done:
                    reading = asyncio.ensure_future(
                        self._call(key, body.batch, buffers, S3_READ_BYTES)
                    )
                for data in blocks:
                    yield data
                # Let go of the batch handed out (its buffers are filled again once let go).
                del data
                blocks.clear()
                if reading is None:
                    return
                blocks = await asyncio.shield(reading)
                reading = None
        finally:
            if reading is None:
                body.close()
            elif reading.done():
                _close_after(body, reading)
            else:
                # Abandoned mid-read: wake the thread if the store keeps it waiting. The body is
                # closed once the thread is done with it, by the read's own end: also when this
                # generator is cancelled again while it waits (a send timeout, a shutdown).
                body.interrupt()
                reading.add_done_callback(functools.partial(_close_after, body))
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([reading])

    def _get_range(self, name: str, start: int, length: int) -> BodyReader | None:
        """A reader of the body of a ranged GetObject; None past the end."""
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=name, Range=f"bytes={start}-{start + length - 1}"
            )
        except ClientError as exc:
            if _code(exc) == "InvalidRange":
                return None  # start at or past the end: nothing to read, as for a local file
            raise
        body = response["Body"]
        answered = _answered(response, start, length)
        if answered is None:
            body.close()
            raise Unavailable(
                "storage answered another range",
                dependency="storage",
                asked=f"bytes={start}-{start + length - 1}",
                got=response.get("ContentRange"),
            )
        size, known = answered
        return BodyReader(body, size, announced=known, endpoint=self._client.meta.endpoint_url)

    async def write(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int
    ) -> ObjectInfo:
        """PutObject when it fits one part, else multipart; aborted on any failure."""
        upload = _Upload(self._client, self._bucket, self._name(key), content_type)
        buffer = bytearray()
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge("object exceeds the byte limit", limit=max_bytes)
                buffer += chunk
                # Strictly more than one part: a body of exactly 8 MiB still goes in one PutObject.
                while len(buffer) > PART_BYTES:
                    part = bytes(buffer[:PART_BYTES])
                    del buffer[:PART_BYTES]
                    await self._call(key, upload.send_part, part)
            await self._call(key, upload.finish, bytes(buffer))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(upload.abort, limiter=self._limiter)
            raise
        info = await self.stat(key)
        return replace(info, content_type=content_type, sha256=upload.sha256.hexdigest())

    async def delete(self, key: str) -> None:
        """DeleteObject; S3 answers success for absent keys."""
        await self._call(key, self._client.delete_object, Bucket=self._bucket, Key=self._name(key))

    async def sweep_partial(self, older_than: datetime, keep: Collection[str] = ()) -> int:
        """Abort multipart uploads a crash or a client left open (they are invisible but billed)."""
        return await self._call(None, self._abort_stale_uploads, older_than, frozenset(keep))

    def _abort_stale_uploads(self, older_than: datetime, keep: frozenset[str]) -> int:
        paginator = self._client.get_paginator("list_multipart_uploads")
        aborted = 0
        for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix):
            for upload in page.get("Uploads", []):
                key = upload["Key"][len(self._prefix) :]
                if upload["Initiated"] < older_than and is_key(key) and key not in keep:
                    self._client.abort_multipart_upload(
                        Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """CreateMultipartUpload; the object appears only once completed."""
        created = await self._call(
            key,
            self._client.create_multipart_upload,
            Bucket=self._bucket,
            Key=self._name(key),
            ContentType=content_type,
        )
        return created["UploadId"]

    async def write_part(
        self, key: str, multipart_id: str, part: PartSlot, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        """UploadPart with the stream as its body: chunks go out as they arrive."""
        reader = BlockingReader(chunks, part.size)
        try:
            sent = await self._call(
                key,
                self._client.upload_part,
                Bucket=self._bucket,
                Key=self._name(key),
                UploadId=multipart_id,
                PartNumber=part.number,
                ContentLength=part.size,
                Body=reader,
            )
        except MediaError:
            if reader.error is not None:
                raise reader.error from None  # the body's failure, not the store's
            raise
        return PartInfo(number=part.number, size=part.size, etag=sent["ETag"].strip('"'))

    async def list_parts(self, key: str, multipart_id: str) -> list[PartInfo]:
        """ListParts through its paginator (1000 parts a page)."""
        return await self._call(key, self._list_parts, self._name(key), multipart_id)

    def _list_parts(self, name: str, multipart_id: str) -> list[PartInfo]:
        paginator = self._client.get_paginator("list_parts")
        pages = paginator.paginate(Bucket=self._bucket, Key=name, UploadId=multipart_id)
        return [
            PartInfo(number=part["PartNumber"], size=part["Size"], etag=part["ETag"].strip('"'))
            for page in pages
            for part in page.get("Parts", [])
        ]

    async def complete_multipart(
        self, key: str, multipart_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        """CompleteMultipartUpload from the given (server-listed) parts, then HeadObject."""
        listed: list[CompletedPartTypeDef] = [
            {"ETag": f'"{part.etag}"', "PartNumber": part.number} for part in parts
        ]
        await self._call(
            key,
            self._client.complete_multipart_upload,
            Bucket=self._bucket,
            Key=self._name(key),
            UploadId=multipart_id,
            MultipartUpload={"Parts": listed},
        )
        return await self.stat(key)

    async def abort_multipart(self, key: str, multipart_id: str) -> None:
        """AbortMultipartUpload; an upload already gone is fine."""
        try:
            await self._call(
                key,
                self._client.abort_multipart_upload,
                Bucket=self._bucket,
                Key=self._name(key),
                UploadId=multipart_id,
            )
        except NotFound:
            return

    async def keys(self) -> list[str]:
        """Every object key directly under the prefix, through the ListObjectsV2 paginator."""
        return await self._call(None, self._list)

    def _list(self) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        found: list[str] = []
        # One level only, and key-shaped names only: other objects sharing the bucket are not ours.
        pages = paginator.paginate(Bucket=self._bucket, Prefix=self._prefix, Delimiter="/")
        for page in pages:
            names = (item["Key"][len(self._prefix) :] for item in page.get("Contents", []))
            found.extend(name for name in names if is_key(name))
        return sorted(found)

    async def ping(self) -> None:
        """HeadBucket; any failure is Unavailable."""
        try:
            await self.check_bucket()
        except ConfigError as exc:  # a bucket gone or closed since start-up: not ready either
            raise Unavailable("storage bucket not usable", dependency="storage") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await anyio.to_thread.run_sync(self._client.close, limiter=self._limiter)

    async def check_bucket(self) -> None:
        """Raise ConfigError when the bucket is missing or closed to us, Unavailable when down."""
        try:
            await anyio.to_thread.run_sync(
                functools.partial(self._client.head_bucket, Bucket=self._bucket),
                limiter=self._limiter,
            )
        except NoCredentialsError as exc:
            raise ConfigError("no AWS credentials found", variable="AWS_ACCESS_KEY_ID") from exc
        except ClientError as exc:
            if _status(exc) in (403, 404):
                raise ConfigError(
                    f"bucket {self._bucket!r} does not exist or is not accessible (HeadBucket "
                    f"answered {_status(exc)})",
                    variable="MEDIA_STORAGE_URL",
                ) from exc
            raise _translate(exc, None) from exc
        except _STORE_ERRORS as exc:
            raise _translate(exc, None) from exc

    def _name(self, key: str) -> str:
        return self._prefix + check_key(key)

    async def _call(
        self, key: str | None, func: Callable[..., _T], *args: Any, **kwargs: Any
    ) -> _T:
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(func, *args, **kwargs), limiter=self._limiter
            )
        except _STORE_ERRORS as exc:
            raise _translate(exc, key) from exc


class _Upload:
    """One object being written: hashes every byte, opens a multipart upload only when needed."""

    def __init__(self, client: S3Client, bucket: str, name: str, content_type: str) -> None:
        self._client = client
        self._bucket = bucket
        self._name = name
        self._content_type = content_type
        self.sha256 = hashlib.sha256()
        # Set inside the worker thread, so an upload id is never lost to a cancelled await.
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    def send_part(self, part: bytes) -> None:
        self.sha256.update(part)
        if self._upload_id is None:
            created = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._name, ContentType=self._content_type
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        sent = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._name,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=part,
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})

    def finish(self, rest: bytes) -> None:
        if self._upload_id is None:
            self.sha256.update(rest)
            self._client.put_object(
                Bucket=self._bucket, Key=self._name, Body=rest, ContentType=self._content_type
            )
            return
        if rest:
            self.send_part(rest)
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._name,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self._upload_id = None

    def abort(self) -> None:
        if self._upload_id is None:
            return
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._name, UploadId=self._upload_id
            )
            self._upload_id = None
        except _STORE_ERRORS:
            # The bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop.
            log.warning("could not abort multipart upload", exc_info=True)


async def open_s3(settings: Settings) -> S3Storage:
    """Build the client from the URL and the AWS_* environment, then check the bucket exists."""
    url = settings.storage
    client = await anyio.to_thread.run_sync(_client, url, settings)
    storage = S3Storage(
        client,
        bucket=url.bucket,
        prefix=url.prefix,
        chunk_bytes=chunk_bytes(settings),
        max_threads=settings.storage_max_connections,
    )
    try:
        await storage.check_bucket()
    except BaseException:
        await storage.close()
        raise
    return storage


def _client(url: StorageUrl, settings: Settings) -> S3Client:
    config = Config(
        max_pool_connections=settings.storage_max_connections,
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=settings.storage_timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={
            "addressing_style": cast(_Addressing, url.addressing_style),  # parsed in config
            # Part bodies are streams that cannot be read twice, so SigV4 must not hash them
            # first (botocore would over plain http); TLS protects the body on https endpoints.
            "payload_signing_enabled": False,
        },
        # Default CRC checksums (boto3 >= 1.36) break some S3-compatible stores; we hash ourselves.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    with _SESSION_LOCK:
        return _session().client(
            "s3", endpoint_url=url.endpoint_url, region_name=url.region, config=config
        )


@functools.cache
def _session() -> boto3.session.Session:
    # Building a session parses the service models (~0.25 s); one per process is enough. Sessions
    # are not thread-safe, so clients are created under _SESSION_LOCK; clients themselves are.
    return boto3.session.Session()


def _answered(response: Any, start: int, length: int) -> tuple[int, bool] | None:
    """The bytes a ranged GetObject's answer holds, and whether that count is known (a chunked
    answer without Content-Range is read to its end); None when it is not the range asked for
    [start, start + length), cut at the object's end."""
    announced = response.get("ContentLength")
    content_range = response.get("ContentRange")
    if content_range is None:
        # A 200 with the whole object (a store without ranges): right from offset 0 only.
        if start != 0:
            return None
        return (length, False) if announced is None else (min(announced, length), True)
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    if match is None:
        return None
    first, last, total = int(match[1]), int(match[2]), match[3]
    end = start + length - 1
    if first != start or last > end:
        return None
    if total != "*" and last != min(end, int(total) - 1):
        return None  # shorter than asked inside the object: the answer would end short
    return last - first + 1, True


def _close_after(body: BodyReader, read: asyncio.Future[list[bytearray]]) -> None:
    """Close a body once the last read in it has ended."""
    if not read.cancelled():
        read.exception()  # retrieved: a failed read nobody waits for is moot
    body.close()


def _close_fetched(fetch: asyncio.Future[BodyReader | None]) -> None:
    """Close the body a GetObject returned after its request was cancelled."""
    if not fetch.cancelled() and fetch.exception() is None:
        reader = fetch.result()
        if reader is not None:
            reader.close()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def _translate(exc: Exception, key: str | None) -> MediaError:
    """Map a boto3/botocore/urllib3 failure onto the MediaError tree."""
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _MISSING:
            return NotFound("no such object", key=key)
        if code == "EntityTooLarge":
            return TooLarge("object exceeds the store's limit", limit=None)
        if code in ("InvalidPart", "InvalidPartOrder"):
            # A part was sent again between the listing and the completion that names it.
            return Conflict("a part changed while the upload was completed", key=key)
        return Unavailable("storage refused", dependency="storage", code=code, status=_status(exc))
    return Unavailable("storage unreachable", dependency="storage", error=type(exc).__name__)
