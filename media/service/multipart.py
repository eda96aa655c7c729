"""Multipart uploads: create, sign part URLs, receive parts, list them to resume, assemble, abort.

Parts go straight into the storage's multipart upload (S3 UploadPart, or positional writes into
one temp file locally); the server's own part list is the only truth at completion."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterable, Sequence
from dataclasses import replace

import anyio
import anyio.to_thread

from media.errors import (
    Conflict,
    InvalidInput,
    InvalidSignature,
    LengthRequired,
    MediaError,
    NotFound,
    TooLarge,
)
from media.models import (
    Media,
    MultipartState,
    PartInfo,
    PartUrl,
    Principal,
    Purpose,
    SignedUrl,
    UploadRequest,
    UploadState,
)
from media.service.context import Parts
from media.service.identity import owner_filter, require_user
from media.service.uploads import (
    CreateUpload,
    Uploads,
    bounded_body,
    check_sha256,
    failure_reason,
)

MiB = 1024 * 1024
MIN_PART_BYTES = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_BYTES = 5 * 1024 * MiB  # S3's maximum part size
DEFAULT_MIN_PART_BYTES = 8 * MiB
MAX_PARTS = 10_000
MAX_SIGNED_PARTS = 100  # part URLs per signUploadParts call
_SHOWN_MISSING = 20


def plan_part_size(size: int, requested: int | None) -> int:
    """The part size of an upload of `size` bytes: the request, checked, or the default."""
    if requested is None:
        # max(8 MiB, size/10000 rounded up to a whole MiB): never more than 10000 parts.
        return max(DEFAULT_MIN_PART_BYTES, -(-size // (MAX_PARTS * MiB)) * MiB)
    if requested < MIN_PART_BYTES:
        raise InvalidInput(
            f"{{field}} must be at least {MIN_PART_BYTES} bytes (5 MiB)",
            field="part_size",
            limit=MIN_PART_BYTES,
        )
    if requested > MAX_PART_BYTES:
        raise InvalidInput(
            f"{{field}} must be at most {MAX_PART_BYTES} bytes (5 GiB)",
            field="part_size",
            limit=MAX_PART_BYTES,
        )
    if requested % MiB:
        # Whole MiB: every fixed chunk size of encryption at rest divides a part.
        raise InvalidInput("{field} must be a multiple of 1048576 bytes (1 MiB)", field="part_size")
    if -(-size // requested) > MAX_PARTS:
        raise InvalidInput(
            f"{{field}} too small: an upload has at most {MAX_PARTS} parts",
            field="part_size",
            limit=MAX_PARTS,
        )
    return requested


class Multipart:
    """Use cases of uploads sent in parts; completion hands over to the single-PUT path."""

    def __init__(self, parts: Parts, uploads: Uploads) -> None:
        self._parts = parts
        self._uploads = uploads

    async def create(
        self, principal: Principal, request: CreateUpload, part_size: int | None
    ) -> MultipartState:
        """An IN_PROGRESS media and an open multipart upload, living MEDIA_MULTIPART_TTL_S."""
        owner, request, media_type = await self._uploads.admit(principal, request)
        size = plan_part_size(request.size_bytes, part_size)
        storage, key = self._parts.storage, uuid.uuid4().hex
        multipart_id = await storage.create_multipart(key, content_type=media_type.mime_type)
        new = self._uploads.new_media(
            request,
            media_type,
            self._parts.settings.multipart_ttl_s,
            storage_key=key,
            part_size=size,
            multipart_id=multipart_id,
        )
        try:
            media, upload = await self._parts.repository.create_media(owner, new)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await storage.abort_multipart(key, multipart_id)
            raise
        return MultipartState(upload=upload, parts=(), media=media)

    async def describe(self, principal: Principal, upload_id: uuid.UUID) -> MultipartState | None:
        """The upload and its parts so far; None when absent, not the caller's or single."""
        upload = await self._uploads.visible(principal, upload_id)
        if upload is None or upload.multipart_id is None:
            return None
        media = await self._parts.repository.get_media(upload.media_id, None)
        if media is None:
            return None
        parts: tuple[PartInfo, ...] = ()
        if upload.state is UploadState.PENDING:
            try:
                parts = tuple(
                    await self._parts.storage.list_parts(media.storage_key, upload.multipart_id)
                )
            except NotFound:
                parts = ()
        return MultipartState(upload=upload, parts=parts, media=media)

    async def sign_parts(
        self, principal: Principal, upload_id: uuid.UUID, numbers: Sequence[int]
    ) -> list[PartUrl]:
        """Short-lived URLs for the given part numbers (at most 100 per call)."""
        upload, media = await self._open(principal, upload_id)
        if len(numbers) > MAX_SIGNED_PARTS:
            raise InvalidInput(
                f"at most {MAX_SIGNED_PARTS} part numbers per call",
                field="part_numbers",
                limit=MAX_SIGNED_PARTS,
            )
        count = upload.part_count
        if any(not 1 <= number <= count for number in numbers):
            raise InvalidInput(f"part numbers run from 1 to {count}", field="part_numbers")
        remaining = int((upload.expires_at - self._parts.clock()).total_seconds())
        ttl_s = max(1, min(self._parts.settings.upload_ttl_s, remaining))
        return [self._part_url(principal, media, upload, n, ttl_s) for n in dict.fromkeys(numbers)]

    def _part_url(
        self, principal: Principal, media: Media, upload: UploadRequest, number: int, ttl_s: int
    ) -> PartUrl:
        size = upload.part_length(number)
        token, expires_at = self._parts.signer.sign(
            Purpose.UPLOAD_PART,
            media_id=media.id,
            subject=principal.subject,
            generation=media.url_generation,
            ttl_s=ttl_s,
            upload_id=upload.id,
            max_bytes=size,
            part_number=number,
        )
        url = SignedUrl(url=f"{self._parts.public_url}/upload/parts/{token}", expires_at=expires_at)
        return PartUrl(number=number, url=url, size=size, headers=(("Content-Length", str(size)),))

    async def _open(
        self, principal: Principal, upload_id: uuid.UUID
    ) -> tuple[UploadRequest, Media]:
        """The caller's multipart upload, still accepting parts."""
        upload = await self._uploads.visible(principal, upload_id)
        if upload is None:
            raise NotFound("upload", id=str(upload_id))
        if upload.multipart_id is None:
            raise InvalidInput("not a multipart upload", field="upload_id")
        if upload.state is not UploadState.PENDING or upload.expires_at <= self._parts.clock():
            raise Conflict("the upload no longer accepts parts", state=upload.state.value)
        media = await self._parts.repository.get_media(upload.media_id, None)
        if media is None:
            raise NotFound("upload", id=str(upload_id))
        return upload, media

    async def receive_part(
        self, token: str, *, content_length: int | None, body: AsyncIterable[bytes]
    ) -> PartInfo:
        """A signed part PUT: exactly the part's size, straight into the storage's upload."""
        upload, media, number, size = await self._verify_part(token)
        if content_length is None:
            raise LengthRequired("Content-Length is required", field="Content-Length")
        if content_length > size:
            raise TooLarge(f"Content-Length is over the part size of {size} bytes", limit=size)
        if content_length < size:
            raise InvalidInput(
                f"Content-Length is under the part size of {size} bytes", field="Content-Length"
            )
        settings = self._parts.settings
        chunks = bounded_body(
            body, size, settings.upload_idle_timeout_s, settings.upload_max_duration_s
        )
        assert upload.multipart_id is not None
        try:
            return await self._parts.storage.write_part(
                media.storage_key, upload.multipart_id, upload.part(number), chunks
            )
        except NotFound as exc:  # aborted or expired while the part was on its way
            raise Conflict("the upload no longer accepts parts") from exc
        except MediaError:
            raise
        except Exception as exc:  # the client went away: only this part is lost
            raise InvalidInput("the part upload was interrupted", reason="interrupted") from exc

    async def _verify_part(self, token: str) -> tuple[UploadRequest, Media, int, int]:
        claims = self._parts.signer.verify(token, {Purpose.UPLOAD_PART})
        repo = self._parts.repository
        upload = await repo.get_upload(claims.upload_id) if claims.upload_id else None
        media = await repo.get_media(claims.media_id, None)
        if upload is None or media is None or upload.media_id != media.id:
            raise InvalidSignature("refused", reason="upload absent")
        if upload.multipart_id is None or media.url_generation != claims.generation:
            raise InvalidSignature("refused", reason="revoked or not multipart")
        number, size = claims.part_number or 0, claims.max_bytes
        if not 1 <= number <= upload.part_count or size != upload.part_length(number):
            raise InvalidSignature("refused", reason="ticket mismatch")
        if upload.state is UploadState.EXPIRED or upload.expires_at <= self._parts.clock():
            raise InvalidSignature("refused", reason="upload expired")
        if upload.state is not UploadState.PENDING:
            raise Conflict("the upload no longer accepts parts", state=upload.state.value)
        return upload, media, number, size

    async def complete(self, principal: Principal, upload_id: uuid.UUID) -> Media:
        """completeUpload for both kinds: a multipart upload is assembled first."""
        require_user(principal)
        upload = await self._parts.repository.get_upload(upload_id)
        owner = owner_filter(principal)
        if (
            upload is not None
            and upload.multipart_id is not None
            and (owner is None or upload.owner == owner)
            and upload.state is UploadState.PENDING
            and upload.expires_at > self._parts.clock()
        ):
            media = await self._parts.repository.get_media(upload.media_id, None)
            if media is not None:
                await self._assemble(media, upload)
        return await self._uploads.complete(principal, upload_id)

    async def _assemble(self, media: Media, upload: UploadRequest) -> Media:
        repo, storage = self._parts.repository, self._parts.storage
        claimed = await repo.transition_upload(
            upload.id, {UploadState.PENDING}, UploadState.RECEIVING
        )
        if claimed is None:
            return media  # another completion (or the reaper) got there first
        assert claimed.multipart_id is not None
        try:
            parts = await storage.list_parts(media.storage_key, claimed.multipart_id)
            check_parts(claimed, parts)
            info = await storage.complete_multipart(media.storage_key, claimed.multipart_id, parts)
        except BaseException:
            # Nothing was assembled: the client may send what is missing and complete again.
            with anyio.CancelScope(shield=True):
                await repo.transition_upload(
                    upload.id, {UploadState.RECEIVING}, UploadState.PENDING
                )
            raise
        try:
            digest = await self._sha256(media.storage_key, info.size)
            info = replace(info, content_type=claimed.declared_type, sha256=digest)
            if info.size != claimed.declared_size:
                raise InvalidInput("size differs", reason="assembled size does not match sizeBytes")
            check_sha256(claimed, info)
        except BaseException as exc:
            await self._uploads.fail(media, claimed, failure_reason(exc))
            if isinstance(exc, MediaError):
                return media
            raise
        return await self._uploads.process(media, claimed, info)

    async def _sha256(self, key: str, size: int) -> str:
        digest = hashlib.sha256()
        async for chunk in self._parts.storage.read(key, 0, size):
            await anyio.to_thread.run_sync(digest.update, chunk)
        return digest.hexdigest()

    async def abort(self, principal: Principal, upload_id: uuid.UUID) -> bool:
        """Drop an upload that has not started completing; False when it had already ended."""
        upload = await self._uploads.visible(principal, upload_id)
        if upload is None:
            raise NotFound("upload", id=str(upload_id))
        repo = self._parts.repository
        moved = await repo.transition_upload(upload.id, {UploadState.PENDING}, UploadState.FAILED)
        if moved is None:
            current = await repo.get_upload(upload_id)
            state = current.state if current is not None else UploadState.FAILED
            if state in (UploadState.FAILED, UploadState.EXPIRED):
                return False
            raise Conflict("the upload is being completed or is done", state=state.value)
        media = await repo.get_media(upload.media_id, None)
        if media is not None:
            await self._uploads.fail(media, moved, "upload aborted")
        return True


def check_parts(upload: UploadRequest, parts: Sequence[PartInfo]) -> None:
    """InvalidInput naming what is missing or wrong, unless `parts` are exactly 1..part_count."""
    by_number = {part.number: part for part in parts}
    count = upload.part_count
    missing = [number for number in range(1, count + 1) if number not in by_number]
    if missing:
        shown = ", ".join(str(number) for number in missing[:_SHOWN_MISSING])
        more = f" and {len(missing) - _SHOWN_MISSING} more" if len(missing) > _SHOWN_MISSING else ""
        raise InvalidInput(f"parts missing: {shown}{more}", field="upload_id", missing=len(missing))
    for number in range(1, count + 1):
        expected = upload.part_length(number)
        if by_number[number].size != expected:
            raise InvalidInput(
                f"part {number} has {by_number[number].size} bytes, expected {expected}",
                field="upload_id",
            )
    if any(part.number > count for part in parts):
        raise InvalidInput(f"parts beyond part {count} were sent", field="upload_id")
