"""Uploads: tickets, the signed PUT, completion and the reaper."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import anyio

from media.errors import (
    Conflict,
    InvalidInput,
    InvalidSignature,
    LengthRequired,
    MediaError,
    NotFound,
    RateLimited,
    TooLarge,
    Unavailable,
    UnsupportedMediaType,
    UploadTimeout,
)
from media.models import (
    OPEN_UPLOAD_STATES,
    Media,
    MediaStatus,
    MediaType,
    NewMedia,
    ObjectInfo,
    Owner,
    Principal,
    Purpose,
    SignedUrl,
    UploadRequest,
    UploadState,
    UploadTicket,
)
from media.service import inputs
from media.service.context import Parts
from media.service.identity import owner_filter, require_user
from media.service.ingest import Ingest
from media.service.processing import Processing
from media.service.url_checks import counted_url_check

logger = logging.getLogger("media.upload")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class CreateUpload:
    """The input of createUpload as the edge parsed it; `Uploads.admit` checks it."""

    file_name: str
    media_type: str
    size_bytes: int
    media_date: datetime | None = None
    sha256: str | None = None  # lowercase hex of the whole file, checked once it is stored


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """What the signed PUT answers."""

    upload_id: uuid.UUID
    media: Media


class Uploads:
    """Use cases from createUpload to a SUCCESS or FAILED media."""

    def __init__(self, parts: Parts, ingest: Ingest, processing: Processing) -> None:
        self._parts = parts
        self._ingest = ingest
        self._processing = processing

    async def create_upload(self, principal: Principal, request: CreateUpload) -> UploadTicket:
        """Store an IN_PROGRESS media and a pending upload; hand out its single-use PUT URL."""
        owner, request, media_type = await self.admit(principal, request)
        new = self.new_media(request, media_type, self._parts.settings.upload_ttl_s)
        media, upload = await self._parts.repository.create_media(owner, new)
        url = self._upload_url(principal, media, upload)
        return UploadTicket(
            upload_id=upload.id,
            url=url,
            method="PUT",
            headers=(
                ("Content-Type", media_type.mime_type),
                ("Content-Length", str(upload.declared_size)),
            ),
            max_bytes=upload.declared_size,
            media=media,
        )

    async def admit(
        self, principal: Principal, request: CreateUpload
    ) -> tuple[Owner, CreateUpload, MediaType]:
        """Check an upload request (name, size, date, type, digest, quota) before any write;
        the request as stored (name trimmed, date in UTC, digest in lowercase)."""
        require_user(principal)
        settings, repo = self._parts.settings, self._parts.repository
        name = inputs.file_name(request.file_name)
        if request.size_bytes <= 0:
            raise InvalidInput("{field} must be positive", field="size_bytes")
        if request.size_bytes > settings.max_upload_bytes:
            raise TooLarge(
                "{field} over the limit", field="size_bytes", limit=settings.max_upload_bytes
            )
        date = request.media_date and inputs.instant(request.media_date, "media_date")
        sha256 = request.sha256 and request.sha256.strip().lower()
        if sha256 is not None and _SHA256.fullmatch(sha256) is None:
            raise InvalidInput("{field} must be 64 lowercase hex digits", field="sha256")
        media_type = await repo.media_type(request.media_type.strip().lower())
        if media_type is None:
            raise UnsupportedMediaType("media type not allowed", field="media_type")
        owner = Owner.of(principal)
        # One row per upload, single or multipart: each counts once.
        if await repo.count_open_uploads(owner) >= settings.max_pending_uploads:
            raise RateLimited("too many open uploads", limit=settings.max_pending_uploads)
        checked = replace(request, file_name=name, media_date=date, sha256=sha256)
        return owner, checked, media_type

    def new_media(
        self,
        request: CreateUpload,
        media_type: MediaType,
        ttl_s: int,
        *,
        storage_key: str | None = None,
        part_size: int | None = None,
        multipart_id: str | None = None,
    ) -> NewMedia:
        """The rows to write for an admitted request."""
        return NewMedia(
            name=request.file_name,
            media_type=media_type,
            size_bytes=request.size_bytes,
            original_file_name=request.file_name,
            media_date=request.media_date,
            storage_key=storage_key or uuid.uuid4().hex,
            upload_id=uuid.uuid4(),
            upload_expires_at=self._parts.clock() + timedelta(seconds=ttl_s),
            sha256=request.sha256,
            part_size=part_size,
            multipart_id=multipart_id,
        )

    def _upload_url(self, principal: Principal, media: Media, upload: UploadRequest) -> SignedUrl:
        token, expires_at = self._parts.signer.sign(
            Purpose.UPLOAD,
            media_id=media.id,
            subject=principal.subject,
            generation=media.url_generation,
            ttl_s=int((upload.expires_at - self._parts.clock()).total_seconds()),
            upload_id=upload.id,
            max_bytes=upload.declared_size,
            content_type=upload.declared_type,
        )
        return SignedUrl(url=f"{self._parts.public_url}/upload/{token}", expires_at=expires_at)

    @counted_url_check
    async def receive(
        self,
        token: str,
        *,
        content_length: int | None,
        content_type: str | None,
        body: AsyncIterable[bytes],
    ) -> UploadOutcome:
        """The signed PUT: claim the upload, stream the body to storage, queue its processing."""
        claims = self._parts.signer.verify(token, {Purpose.UPLOAD})
        repo = self._parts.repository
        upload = await repo.get_upload(claims.upload_id) if claims.upload_id else None
        media = await repo.get_media(claims.media_id, None)
        if upload is None or media is None or upload.media_id != media.id:
            raise InvalidSignature("refused", reason="upload absent")
        if upload.multipart_id is not None:
            raise InvalidSignature("refused", reason="multipart upload")
        if media.url_generation != claims.generation:
            raise InvalidSignature("refused", reason="revoked")
        if (claims.max_bytes, claims.content_type) != (upload.declared_size, upload.declared_type):
            raise InvalidSignature("refused", reason="ticket mismatch")  # every field checked
        if upload.state is UploadState.EXPIRED or upload.expires_at <= self._parts.clock():
            # An expired URL is refused like any other unusable URL (docs/security.md §1.13).
            raise InvalidSignature("refused", reason="upload expired")
        if upload.state is not UploadState.PENDING:
            raise Conflict("upload already used", state=upload.state.value)
        _check_headers(upload, content_length, content_type)
        claimed = await repo.transition_upload(
            upload.id, {UploadState.PENDING}, UploadState.RECEIVING, temp_key=media.storage_key
        )
        if claimed is None:
            raise Conflict("upload already used")
        info = await self._store(media, upload, body)
        return UploadOutcome(upload_id=upload.id, media=await self.process(media, upload, info))

    async def process(self, media: Media, upload: UploadRequest, info: ObjectInfo) -> Media:
        """What follows once all the bytes of an upload are stored, for single PUTs and parts:
        its processing job is queued; the media stays IN_PROGRESS until the job ends."""
        return await self._processing.enqueue(media, upload, info)

    async def fail(self, media: Media, upload: UploadRequest | None, reason: str) -> Media:
        """Mark the media FAILED and delete its bytes, received parts included."""
        with anyio.CancelScope(shield=True):
            if upload is not None and upload.multipart_id is not None:
                await self._abort_parts(media.storage_key, upload.multipart_id)
            failed = await self._ingest.fail(media, upload, reason, keys=(media.storage_key,))
        return failed

    async def _abort_parts(self, key: str, multipart_id: str) -> None:
        try:
            await self._parts.storage.abort_multipart(key, multipart_id)
        except MediaError as exc:  # the collector aborts it later (no open row names it then)
            logger.warning("could not abort a multipart upload: %s", exc.code)

    async def _store(
        self, media: Media, upload: UploadRequest, body: AsyncIterable[bytes]
    ) -> ObjectInfo:
        try:
            info = await self._parts.storage.write(
                media.storage_key,
                bounded_body(
                    body,
                    upload.declared_size,
                    self._parts.settings.upload_idle_timeout_s,
                    self._parts.settings.upload_max_duration_s,
                ),
                content_type=upload.declared_type,
                max_bytes=upload.declared_size,
            )
            if info.size != upload.declared_size:
                raise InvalidInput(
                    "body shorter than declared", reason="body shorter than declared"
                )
            check_sha256(upload, info)
        except Unavailable:
            # The store is down, not the upload: a failed write keeps nothing of the body, and
            # the ticket goes back to unused, so the PUT sent again after Retry-After succeeds.
            with anyio.CancelScope(shield=True):
                await self._parts.repository.transition_upload(
                    upload.id, {UploadState.RECEIVING}, UploadState.PENDING
                )
            raise
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._ingest.fail(
                    media, upload, failure_reason(exc), keys=(media.storage_key,)
                )
            if isinstance(exc, Exception) and not isinstance(exc, MediaError):
                # The client went away or the body broke: nothing of it is kept.
                raise InvalidInput("upload interrupted", reason="upload interrupted") from exc
            raise
        return info

    async def visible(self, principal: Principal, upload_id: uuid.UUID) -> UploadRequest | None:
        """The upload when the caller may see it (its owner, or an admin), else None."""
        require_user(principal)
        upload = await self._parts.repository.get_upload(upload_id)
        owner = owner_filter(principal)
        if upload is None or (owner is not None and upload.owner != owner):
            return None
        return upload

    async def complete(self, principal: Principal, upload_id: uuid.UUID) -> Media:
        """Idempotent: the media's current state (IN_PROGRESS until its job ended)."""
        upload = await self.visible(principal, upload_id)
        if upload is not None:
            await self.reap_one(upload)
            media = await self._parts.repository.get_media(upload.media_id, None)
            if media is not None:
                return media
        raise NotFound("upload", id=str(upload_id))

    async def reap(self, limit: int = 100) -> int:
        """Fail uploads that can no longer finish, remove their objects; safe in many processes."""
        now = self._parts.clock()
        count = 0
        unqueued = OPEN_UPLOAD_STATES - {UploadState.PROCESSING}
        for upload in await self._parts.repository.expired_uploads(now, limit, unqueued):
            count += await self.reap_one(upload)
        return count

    async def reap_one(self, upload: UploadRequest) -> int:
        """Expire one upload if its time is over; 1 when it was reaped by this call."""
        now = self._parts.clock()
        if upload.state not in OPEN_UPLOAD_STATES or upload.expires_at >= now:
            return 0
        if upload.state is UploadState.PROCESSING:
            return 0  # its durable job owns it: retried, then FAILED after the last attempt
        # A receiving or processing upload is only reaped once it cannot still be running.
        longest = self._parts.settings.longest_upload
        if upload.state is not UploadState.PENDING and upload.expires_at + longest >= now:
            return 0
        moved = await self._parts.repository.transition_upload(
            upload.id, {upload.state}, UploadState.EXPIRED, now=now
        )
        if moved is None:
            return 0  # another process got there first
        media = await self._parts.repository.get_media(upload.media_id, None)
        if media is not None and upload.multipart_id is not None:
            await self._abort_parts(media.storage_key, upload.multipart_id)
        if media is not None and media.status is MediaStatus.IN_PROGRESS:
            await self._ingest.fail(media, None, "upload expired", keys=(media.storage_key,))
        return 1


def check_sha256(upload: UploadRequest, info: ObjectInfo) -> None:
    """InvalidInput when the client declared a SHA-256 that the stored bytes do not have."""
    if upload.sha256 is not None and info.sha256 != upload.sha256:
        raise InvalidInput("sha256 does not match", reason="sha256 does not match")


def _check_headers(
    upload: UploadRequest, content_length: int | None, content_type: str | None
) -> None:
    if content_length is None:
        raise LengthRequired("Content-Length is required", field="Content-Length")
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared != upload.declared_type:
        raise UnsupportedMediaType("Content-Type does not match the ticket", field="Content-Type")
    if content_length > upload.declared_size:
        raise TooLarge("Content-Length over the declared size", limit=upload.declared_size)
    if content_length < upload.declared_size:
        raise InvalidInput("Content-Length under the declared size", field="Content-Length")


async def bounded_body(
    body: AsyncIterable[bytes], limit: int, idle_s: float, max_s: float
) -> AsyncIterator[bytes]:
    """The body, cut at `limit` bytes, after `idle_s` without a byte or `max_s` in all."""
    received = 0
    chunks = aiter(body)
    deadline = anyio.current_time() + max_s
    while True:
        wait = min(idle_s, deadline - anyio.current_time())
        try:
            with anyio.fail_after(max(wait, 0)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            limit_s = idle_s if wait == idle_s else max_s
            raise UploadTimeout("the upload body stalled or took too long", limit=limit_s) from None
        received += len(chunk)
        if received > limit:
            raise TooLarge("body longer than declared", limit=limit)
        yield chunk


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, TooLarge):
        return "body longer than declared"
    if isinstance(exc, UploadTimeout):
        return "upload idle timeout"
    if isinstance(exc, InvalidInput):
        return str(exc.data.get("reason") or exc.detail)
    if isinstance(exc, Unavailable):
        return "storage unavailable"
    return "upload interrupted"
