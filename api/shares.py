"""Share links over GraphQL: the owner's ShareLink and the anonymous viewer's SharedMedia.

The anonymous view is its own type with an explicit allow-list of fields, so a field added to
Media later (location, camera, file name) never reaches a link's viewers by accident."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.ids import require_media_id, require_share_link_id
from api.limits import listing
from api.types import (
    ExpiresInArgument,
    Media,
    MediaKind,
    PageInfo,
    PlaybackExpiresInArgument,
    SignedUrl,
)
from media import models
from media.service import CreateShareLink
from media.service.cursor import encode_share_cursor

DEFAULT_PAGE_SIZE = 20


def _link_url(
    root: SharedMedia, info: Info, purpose: models.Purpose, expires_in: int | None
) -> SignedUrl | None:
    shares = info.context.service.shares
    return SignedUrl.of(shares.signed_url(root.link, root.model, purpose, expires_in))


def resolve_shared_stream_url(
    root: SharedMedia, info: Info, expires_in: PlaybackExpiresInArgument = None
) -> SignedUrl | None:
    """Inline playback URL minted through the link."""
    return _link_url(root, info, models.Purpose.STREAM, expires_in)


def resolve_shared_hls_url(
    root: SharedMedia, info: Info, expires_in: PlaybackExpiresInArgument = None
) -> SignedUrl | None:
    """HLS master playlist URL minted through the link."""
    return _link_url(root, info, models.Purpose.HLS, expires_in)


def resolve_shared_download_url(
    root: SharedMedia, info: Info, expires_in: ExpiresInArgument = None
) -> SignedUrl | None:
    """Download URL minted through the link, when the link allows downloads."""
    return _link_url(root, info, models.Purpose.DOWNLOAD, expires_in)


def resolve_shared_thumbnail_url(
    root: SharedMedia, info: Info, expires_in: ExpiresInArgument = None
) -> SignedUrl | None:
    """Thumbnail URL minted through the link."""
    return _link_url(root, info, models.Purpose.THUMBNAIL, expires_in)


@strawberry.type(
    description="A media as the viewer of a share link sees it: no owner-only fields "
    "(no file name, location or processing details); URLs stop with the link."
)
class SharedMedia:
    """A media seen through a share link."""

    link: strawberry.Private[models.ShareLink]
    model: strawberry.Private[models.Media]
    id: strawberry.ID = strawberry.field(description="The media id.")
    kind: MediaKind = strawberry.field(description="Video or image.")
    media_type: str = strawberry.field(description="MIME type of the original.")
    playback_media_type: str = strawberry.field(description="MIME type of what streamUrl serves.")
    thumbhash: str | None = strawberry.field(description="Base64 ThumbHash placeholder.")
    width: int | None = strawberry.field(description="Width in pixels as displayed.")
    height: int | None = strawberry.field(description="Height in pixels as displayed.")
    duration_seconds: float | None = strawberry.field(description="Duration of a video.")
    has_thumbnail: bool = strawberry.field(description="True when a JPEG thumbnail exists.")

    stream_url = strawberry.field(
        resolver=resolve_shared_stream_url,
        description="Inline playback URL; never outlives the link, dies when it is revoked.",
    )
    hls_url = strawberry.field(
        resolver=resolve_shared_hls_url,
        description="HLS master playlist URL (adaptive streaming); null without an HLS ladder; "
        "never outlives the link, dies when it is revoked.",
    )
    download_url = strawberry.field(
        resolver=resolve_shared_download_url,
        description="Download URL; null unless the link allows downloads.",
    )
    thumbnail_url = strawberry.field(
        resolver=resolve_shared_thumbnail_url,
        description="JPEG thumbnail URL; null without a thumbnail.",
    )

    @classmethod
    def of(cls, link: models.ShareLink, media: models.Media) -> SharedMedia:
        """The anonymous view of one media of a link."""
        return cls(
            link=link,
            model=media,
            id=strawberry.ID(str(media.id)),
            kind=MediaKind[media.kind.name],
            media_type=media.media_type,
            playback_media_type=media.playback_media_type,
            thumbhash=media.thumbhash,
            width=media.width,
            height=media.height,
            duration_seconds=media.duration_seconds,
            has_thumbnail=media.has_thumbnail,
        )


@strawberry.type(description="What a share link shows to anyone holding its token.")
class SharedMediaSet:
    """What a share link shows."""

    title: str | None = strawberry.field(description="The title the owner gave the link.")
    expires_at: datetime = strawberry.field(description="When the link stops working.")
    allow_download: bool = strawberry.field(description="True when download URLs are given.")
    medias: list[SharedMedia] = strawberry.field(description="The ready media of the link.")

    @classmethod
    def of(cls, shared: models.SharedSet) -> SharedMediaSet | None:
        """The viewer's set, or None for every way a link can be unusable."""
        link = shared.link
        if shared.access is not models.ShareAccess.GRANTED or link is None:
            return None
        return cls(
            title=link.title,
            expires_at=link.expires_at,
            allow_download=link.allow_download,
            medias=[SharedMedia.of(link, media) for media in shared.medias],
        )


async def resolve_link_medias(root: ShareLink, info: Info) -> list[Media]:
    """The media of the link, in the owner's order."""
    medias = await info.context.service.shares.owner_medias(root.model)
    listing(len(medias))
    return [Media.of(media) for media in medias]


@strawberry.type(description="A share link, as its owner sees it.")
class ShareLink:
    """A share link, as its owner sees it."""

    model: strawberry.Private[models.ShareLink]
    id: strawberry.ID = strawberry.field(description="Opaque id; pass it to revokeShareLink.")
    token: str = strawberry.field(description="The secret of the link; whoever holds it sees.")
    url: str = strawberry.field(description="The page of the link (GET /s/{token}).")
    title: str | None = strawberry.field(description="Shown to viewers and in link previews.")
    expires_at: datetime = strawberry.field(description="When the link stops working.")
    created_at: datetime = strawberry.field(description="When the link was created.")
    allow_download: bool = strawberry.field(description="True when viewers get download URLs.")
    has_password: bool = strawberry.field(description="True when viewers need a password.")
    view_count: int = strawberry.field(description="Page views and sharedMedia calls so far.")
    medias = strawberry.field(
        resolver=resolve_link_medias,
        description="The media of the link; a deleted media leaves every link.",
    )

    @classmethod
    def of(cls, link: models.ShareLink, url: str) -> ShareLink:
        """The owner's view of a link."""
        return cls(
            model=link,
            id=strawberry.ID(link.id),
            token=link.token,
            url=url,
            title=link.title,
            expires_at=link.expires_at,
            created_at=link.created_at,
            allow_download=link.allow_download,
            has_password=link.has_password,
            view_count=min(link.view_count, 2**31 - 1),  # GraphQL Int is 32-bit
        )


@strawberry.type(description="One share link in a listing, with the cursor that points at it.")
class ShareLinkEdge:
    """One share link in a listing."""

    cursor: str = strawberry.field(description="Opaque position; pass it as `after`.")
    node: ShareLink = strawberry.field(description="The link.")


@strawberry.type(description="A page of the caller's share links, newest first (Relay).")
class ShareLinkConnection:
    """A page of share links."""

    edges: list[ShareLinkEdge] = strawberry.field(description="The links of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the listing.")


@strawberry.input(description="What to share, for how long and how.")
class CreateShareLinkInput:
    """What to share."""

    media_ids: list[strawberry.ID] = strawberry.field(
        description="The caller's media to share (1 to 500), in the order shown."
    )
    expires_in: int = strawberry.field(
        description="Lifetime in seconds; more than MEDIA_SHARE_MAX_TTL_S gets that cap."
    )
    allow_download: bool | None = strawberry.field(
        default=False, description="Give viewers download URLs of the originals."
    )
    password: str | None = strawberry.field(
        default=None, description="Viewers must give it (stored as an argon2 hash)."
    )
    title: str | None = strawberry.field(
        default=None, description="Up to 200 characters, shown to viewers."
    )


FirstArgument = Annotated[
    int | None, strawberry.argument(description="Page size, 0 to 100 (default 20).")
]
AfterArgument = Annotated[
    str | None, strawberry.argument(description="The endCursor of the previous page.")
]
TokenArgument = Annotated[str, strawberry.argument(description="The token of the link.")]
PasswordArgument = Annotated[
    str | None, strawberry.argument(description="The link's password, when it has one.")
]
CreateArgument = Annotated[CreateShareLinkInput, strawberry.argument(description="What to share.")]
LinkIdArgument = Annotated[strawberry.ID, strawberry.argument(description="The link id.")]


async def resolve_share_links(
    info: Info, first: FirstArgument = DEFAULT_PAGE_SIZE, after: AfterArgument = None
) -> ShareLinkConnection:
    """One page of the caller's links."""
    context = info.context
    shares = context.service.shares
    page = await shares.list_links(
        context.principal, first=DEFAULT_PAGE_SIZE if first is None else first, after=after
    )
    listing(len(page.items))
    edges = [
        ShareLinkEdge(
            cursor=encode_share_cursor(models.ShareCursor(link.created_at, link.id)),
            node=ShareLink.of(link, shares.url(link)),
        )
        for link in page.items
    ]
    info_ = PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return ShareLinkConnection(edges=edges, page_info=info_)


async def resolve_shared_media(
    info: Info, token: TokenArgument, password: PasswordArgument = None
) -> SharedMediaSet | None:
    """The media of a link for anyone holding its token; null for any unusable link."""
    shared = await info.context.service.shares.open(token, password)
    listing(len(shared.medias))
    return SharedMediaSet.of(shared)


async def resolve_create_share_link(info: Info, input: CreateArgument) -> ShareLink:
    """A new link to some of the caller's media."""
    request = CreateShareLink(
        media_ids=tuple(require_media_id(value, "mediaIds") for value in input.media_ids),
        expires_in=input.expires_in,
        allow_download=bool(input.allow_download),
        password=input.password,
        title=input.title,
    )
    context = info.context
    link = await context.service.shares.create(context.principal, request)
    return ShareLink.of(link, context.service.shares.url(link))


async def resolve_revoke_share_link(info: Info, id: LinkIdArgument) -> bool:
    """Revoke one of the caller's links."""
    context = info.context
    return await context.service.shares.revoke(context.principal, require_share_link_id(id))
