"""The Mutation root: each resolver parses its input and makes one service call."""

from __future__ import annotations

import math
from typing import Annotated

import strawberry

from api.context import Info
from api.ids import require_media_id, require_upload_id
from api.shares import resolve_create_share_link, resolve_revoke_share_link
from api.types import CreateUploadInput, Media, UploadTicket
from api.upload_types import MultipartUpload, UploadPartUrl
from media.errors import InvalidInput
from media.service import CreateUpload

MediaIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The opaque media id (Media.id).")
]
UploadIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The uploadId of the ticket.")
]

CreateUploadArgument = Annotated[
    CreateUploadInput, strawberry.argument(description="What is about to be uploaded.")
]


PartSizeArgument = Annotated[
    float | None,
    strawberry.argument(
        description="Bytes per part: at least 5 MiB, a multiple of 1 MiB; "
        "default max(8 MiB, size/10000 rounded up to a MiB)."
    ),
]
PartNumbersArgument = Annotated[
    list[int], strawberry.argument(description="Part numbers to sign, at most 100.")
]


def _size(value: float, field: str = "sizeBytes") -> int:
    """A GraphQL Float that must hold a whole number of bytes (Int stops at 2^31)."""
    if not math.isfinite(value) or not value.is_integer():
        raise InvalidInput(f"{field} must be a whole number", field=field)
    return int(value)


def _create_request(input: CreateUploadInput) -> CreateUpload:
    return CreateUpload(
        file_name=input.file_name,
        media_type=input.media_type,
        size_bytes=_size(input.size_bytes),
        media_date=input.media_date,
        sha256=input.sha256,
    )


async def resolve_create_upload(info: Info, input: CreateUploadArgument) -> UploadTicket:
    """A new upload ticket."""
    context = info.context
    request = _create_request(input)
    ticket = await context.service.uploads.create_upload(context.principal, request)
    return UploadTicket.of(ticket)


async def resolve_create_multipart_upload(
    info: Info, input: CreateUploadArgument, part_size: PartSizeArgument = None
) -> MultipartUpload:
    """A new multipart upload."""
    context = info.context
    request = _create_request(input)
    size = None if part_size is None else _size(part_size, "partSize")
    created = await context.service.multipart.create(context.principal, request, size)
    return MultipartUpload.of(created)


async def resolve_sign_upload_parts(
    info: Info, upload_id: UploadIdArgument, part_numbers: PartNumbersArgument
) -> list[UploadPartUrl]:
    """Signed URLs for parts."""
    context = info.context
    urls = await context.service.multipart.sign_parts(
        context.principal, require_upload_id(upload_id), part_numbers
    )
    return [UploadPartUrl.of(url) for url in urls]


async def resolve_complete_upload(info: Info, upload_id: UploadIdArgument) -> Media:
    """The media of an upload, in its current state."""
    context = info.context
    media = await context.service.multipart.complete(
        context.principal, require_upload_id(upload_id)
    )
    return Media.of(media)


async def resolve_abort_upload(info: Info, upload_id: UploadIdArgument) -> bool:
    """Abort an upload."""
    context = info.context
    return await context.service.multipart.abort(context.principal, require_upload_id(upload_id))


async def resolve_delete_media(info: Info, id: MediaIdArgument) -> bool:
    """Delete one media."""
    context = info.context
    return await context.service.library.delete_media(context.principal, require_media_id(id))


async def resolve_revoke_media_urls(info: Info, id: MediaIdArgument) -> Media:
    """Revoke every URL of one media."""
    context = info.context
    media = await context.service.library.revoke_urls(context.principal, require_media_id(id))
    return Media.of(media)


@strawberry.type(description="Upload, delete and revoke media.")
class Mutation:
    """Upload, delete and revoke media."""

    create_upload = strawberry.mutation(
        resolver=resolve_create_upload,
        description="Create an IN_PROGRESS media and a single-use upload URL.",
    )
    create_multipart_upload = strawberry.mutation(
        resolver=resolve_create_multipart_upload,
        description="Create an IN_PROGRESS media and an upload sent in parts (resumable).",
    )
    sign_upload_parts = strawberry.mutation(
        resolver=resolve_sign_upload_parts,
        description="Short-lived signed URLs for parts of a multipart upload, at most 100 a call.",
    )
    complete_upload = strawberry.mutation(
        resolver=resolve_complete_upload,
        description="Idempotent: the media's current state once its upload ended. A multipart "
        "upload is first assembled from the parts the server received (BAD_USER_INPUT naming "
        "the missing parts otherwise).",
    )
    abort_upload = strawberry.mutation(
        resolver=resolve_abort_upload,
        description="Abort an upload not yet completing: deletes the received bytes and frees "
        "the pending-upload slot; false when it had already failed, been aborted or expired; "
        "CONFLICT once it is completing or complete (its media stays).",
    )
    delete_media = strawberry.mutation(
        resolver=resolve_delete_media,
        description="Delete a media and its objects; false when there was nothing to delete.",
    )
    revoke_media_urls = strawberry.mutation(
        resolver=resolve_revoke_media_urls,
        description="Make every URL issued so far for this media stop working.",
    )
    create_share_link = strawberry.mutation(
        resolver=resolve_create_share_link,
        description="Share some of the caller's media through an unguessable link page.",
    )
    revoke_share_link = strawberry.mutation(
        resolver=resolve_revoke_share_link,
        description="End one of the caller's links now: its page, sharedMedia and every URL "
        "minted through it; false when there was no such link.",
    )
