"""The Query root: each resolver is one service call."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.context import Info
from api.ids import parse_media_id, require_upload_id
from api.limits import listing
from api.shares import resolve_share_links, resolve_shared_media
from api.types import Media, MediaConnection, MediaFilter, Viewer
from api.upload_types import MultipartUpload
from media.models import MediaFilter as CoreMediaFilter

DEFAULT_PAGE_SIZE = 20

MediaIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The opaque media id (Media.id).")
]
FirstArgument = Annotated[
    int | None, strawberry.argument(description="Page size, 0 to 100 (default 20).")
]
AfterArgument = Annotated[
    str | None, strawberry.argument(description="The endCursor of the previous page.")
]
FilterArgument = Annotated[MediaFilter | None, strawberry.argument(description="Optional filters.")]


def resolve_me(info: Info) -> Viewer:
    """The caller."""
    return Viewer.of(info.context.principal)


async def resolve_media(info: Info, id: MediaIdArgument) -> Media | None:
    """One media, or null when absent, not visible or not a media id."""
    media_id = parse_media_id(id)
    if media_id is None:
        return None
    context = info.context
    found = await context.service.library.get_media(context.principal, media_id)
    return None if found is None else Media.of(found)


async def resolve_medias(
    info: Info,
    first: FirstArgument = DEFAULT_PAGE_SIZE,
    after: AfterArgument = None,
    filter: FilterArgument = None,
) -> MediaConnection:
    """One page of media: a single service call, thumbnails already joined."""
    context = info.context
    page = await context.service.library.list_media(
        context.principal,
        first=DEFAULT_PAGE_SIZE if first is None else first,
        after=after,
        media_filter=CoreMediaFilter() if filter is None else filter.to_model(),
    )
    listing(len(page.items))
    return MediaConnection.of(page, after=after)


UploadIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The uploadId of a multipart upload.")
]


async def resolve_upload(info: Info, upload_id: UploadIdArgument) -> MultipartUpload | None:
    """A multipart upload and the parts received so far."""
    context = info.context
    found = await context.service.multipart.describe(
        context.principal, require_upload_id(upload_id)
    )
    return None if found is None else MultipartUpload.of(found)


@strawberry.type(description="Read the caller's identity and media.")
class Query:
    """Read the caller's identity and media."""

    me = strawberry.field(
        resolver=resolve_me,
        description="The caller: subject, issuer and scopes (works without a token).",
    )
    media = strawberry.field(
        resolver=resolve_media,
        description="One media; null when absent or not visible to the caller.",
    )
    medias = strawberry.field(
        resolver=resolve_medias,
        description="The caller's media, newest first; admins see every owner's.",
    )
    share_links = strawberry.field(
        resolver=resolve_share_links,
        description="The caller's own share links, newest first (expired ones until revoked).",
    )
    shared_media = strawberry.field(
        resolver=resolve_shared_media,
        description="What a share link shows; no bearer needed. Null for an unknown, expired, "
        "revoked or locked link and for a wrong or missing password, all alike.",
    )
    upload = strawberry.field(
        resolver=resolve_upload,
        description="A multipart upload and the parts received so far (to resume it); null "
        "when absent, not the caller's or a single-PUT upload.",
    )
