"""The Mutation root: each resolver parses its input and makes one service call."""

from __future__ import annotations

import math
from typing import Annotated

import strawberry

from api.context import Info
from api.ids import require_media_id, require_upload_id
from api.shares import resolve_create_share_link, resolve_revoke_share_link
from api.types import CreateUploadInput, Media, UploadTicket
from media.errors import InvalidInput
from media.service import CreateUpload

MAX_FILE_NAME_LENGTH = 255  # the width of the stored name column

MediaIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The opaque media id (Media.id).")
]
UploadIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The uploadId of the ticket.")
]

CreateUploadArgument = Annotated[
    CreateUploadInput, strawberry.argument(description="What is about to be uploaded.")
]


def _size(value: float) -> int:
    if not math.isfinite(value) or not value.is_integer():
        raise InvalidInput("sizeBytes must be a whole number", field="sizeBytes")
    return int(value)


def _file_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > MAX_FILE_NAME_LENGTH:
        raise InvalidInput(
            f"fileName needs 1 to {MAX_FILE_NAME_LENGTH} characters", field="fileName"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise InvalidInput("fileName contains control characters", field="fileName")
    return name


async def resolve_create_upload(info: Info, input: CreateUploadArgument) -> UploadTicket:
    """A new upload ticket."""
    request = CreateUpload(
        file_name=_file_name(input.file_name),
        media_type=input.media_type,
        size_bytes=_size(input.size_bytes),
        media_date=input.media_date,
    )
    context = info.context
    ticket = await context.service.uploads.create_upload(context.principal, request)
    return UploadTicket.of(ticket)


async def resolve_complete_upload(info: Info, upload_id: UploadIdArgument) -> Media:
    """The media of an upload, in its current state."""
    context = info.context
    media = await context.service.uploads.complete(context.principal, require_upload_id(upload_id))
    return Media.of(media)


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
    complete_upload = strawberry.mutation(
        resolver=resolve_complete_upload,
        description="Idempotent: the media's current state once its upload ended.",
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
