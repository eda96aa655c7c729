"""GraphQL object types, inputs and enums, built from the core's frozen values."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.execution import context_resolver
from media import models
from media.service.cursor import encode_cursor


@strawberry.enum(description="What a media is, decided by its type.")
class MediaKind(enum.Enum):
    """What a media is, decided by its type."""

    VIDEO = strawberry.enum_value("video", description="A video (mp4, mov, webm, mkv).")
    IMAGE = strawberry.enum_value(
        "image", description="An image (jpeg, png, webp, gif, heic, heif, avif)."
    )


@strawberry.enum(description="The processing step a media is at, or the one where it failed.")
class ProcessingStage(enum.Enum):
    """The processing step a media is at, or the one where it failed."""

    PROBE = strawberry.enum_value("probe", description="Checking the type and reading details.")
    RENDITION = strawberry.enum_value(
        "rendition", description="Making what browsers play or show (remux, transcode, preview)."
    )
    THUMBNAIL = strawberry.enum_value("thumbnail", description="Rendering the JPEG thumbnail.")
    HLS = strawberry.enum_value("hls", description="Encoding the HLS ladder (adaptive streaming).")


# Published as UploadStatus (a contract); it is models.MediaStatus, not models.UploadState.
@strawberry.enum(
    name="UploadStatus", description="Where a media is in its upload and processing life."
)
class MediaStatus(enum.Enum):
    """Where a media is in its upload and processing life (models.MediaStatus)."""

    IN_PROGRESS = strawberry.enum_value(
        "in_progress", description="Waiting for the bytes, or being processed."
    )
    SUCCESS = strawberry.enum_value("success", description="Stored, checked and playable.")
    FAILED = strawberry.enum_value("failed", description="Rejected; see failureReason.")


@strawberry.type(description="The caller as the service sees it.")
class Viewer:
    """The caller as the service sees it."""

    subject: str = strawberry.field(description="OIDC subject; empty for anonymous callers.")
    issuer: str = strawberry.field(description="OIDC issuer URL; empty for anonymous callers.")
    scopes: list[str] = strawberry.field(description="Granted scopes: user, admin or anonymous.")
    anonymous: bool = strawberry.field(description="True when the request carried no token.")
    admin: bool = strawberry.field(description="True when the caller may see every owner's media.")

    @classmethod
    def of(cls, principal: models.Principal) -> Viewer:
        """The viewer of a verified principal."""
        return cls(
            subject=principal.subject,
            issuer=principal.issuer,
            scopes=sorted(principal.scopes),
            anonymous=principal.is_anonymous,
            admin=principal.is_admin,
        )


@strawberry.type(
    description="A short-lived signed URL; anyone holding it may use it until expiresAt."
)
class SignedUrl:
    """A short-lived signed URL."""

    url: str = strawberry.field(description="Absolute URL; treat it as a secret.")
    expires_at: datetime = strawberry.field(description="When the URL stops working.")

    @classmethod
    def of(cls, value: models.SignedUrl | None) -> SignedUrl | None:
        """The GraphQL value of a signed URL, if any."""
        return None if value is None else cls(url=value.url, expires_at=value.expires_at)


def _signed(
    info: Info, media: models.Media, purpose: models.Purpose, expires_in: int | None
) -> SignedUrl | None:
    context = info.context  # the service caps expiresIn (docs/security.md §1.4)
    return SignedUrl.of(
        context.service.library.signed_url(context.principal, media, purpose, expires_in)
    )


ExpiresInArgument = Annotated[
    int | None,
    strawberry.argument(
        description="Lifetime in seconds; default MEDIA_URL_TTL_S, capped at 24 h."
    ),
]


PlaybackExpiresInArgument = Annotated[
    int | None,
    strawberry.argument(
        description="Lifetime in seconds; default the longer of MEDIA_URL_TTL_S and the "
        "video's duration plus 10 minutes, capped at 24 h."
    ),
]


@context_resolver
def resolve_stream_url(
    root: Media, info: Info, expires_in: PlaybackExpiresInArgument = None
) -> SignedUrl | None:
    """Inline playback URL."""
    return _signed(info, root.model, models.Purpose.STREAM, expires_in)


@context_resolver
def resolve_download_url(
    root: Media, info: Info, expires_in: ExpiresInArgument = None
) -> SignedUrl | None:
    """Download URL."""
    return _signed(info, root.model, models.Purpose.DOWNLOAD, expires_in)


@context_resolver
def resolve_hls_url(
    root: Media, info: Info, expires_in: PlaybackExpiresInArgument = None
) -> SignedUrl | None:
    """HLS master playlist URL."""
    return _signed(info, root.model, models.Purpose.HLS, expires_in)


@context_resolver
def resolve_thumbnail_url(
    root: Media, info: Info, expires_in: ExpiresInArgument = None
) -> SignedUrl | None:
    """JPEG thumbnail URL."""
    return _signed(info, root.model, models.Purpose.THUMBNAIL, expires_in)


def _located(root: Media, info: Info) -> models.MediaMetadata | None:
    """The details holding the location when the caller may see it (owner or admin)."""
    if not root.model.shows_location_to(info.context.principal):
        return None
    return root.model.details


@context_resolver
def resolve_latitude(root: Media, info: Info) -> float | None:
    """Latitude, for the owner and admins only."""
    details = _located(root, info)
    return details.latitude if details is not None else None


@context_resolver
def resolve_longitude(root: Media, info: Info) -> float | None:
    """Longitude, for the owner and admins only."""
    details = _located(root, info)
    return details.longitude if details is not None else None


@strawberry.type(description="One uploaded video or image and its processing state.")
class Media:
    """One uploaded video or image and its processing state."""

    model: strawberry.Private[models.Media]
    id: strawberry.ID = strawberry.field(
        description="Stable opaque id: 22 URL-safe characters (128 random bits), not a counter."
    )
    name: str = strawberry.field(description="Display name, the uploaded file name by default.")
    media_type: str = strawberry.field(description="MIME type of the original.")
    kind: MediaKind = strawberry.field(description="Video or image.")
    status: MediaStatus = strawberry.field(description="Upload and processing state.")
    failure_reason: str | None = strawberry.field(description="Why processing failed, if it did.")
    size_bytes: float | None = strawberry.field(
        description="Size of the original in bytes, exactly as uploaded."
    )
    media_date: datetime | None = strawberry.field(description="When the media was captured.")
    created_at: datetime = strawberry.field(description="When the upload was requested.")
    updated_at: datetime = strawberry.field(description="When the media last changed.")
    width: int | None = strawberry.field(
        description="Width in pixels as displayed (rotation and pixel aspect applied)."
    )
    height: int | None = strawberry.field(
        description="Height in pixels as displayed (rotation and pixel aspect applied)."
    )
    duration_seconds: float | None = strawberry.field(
        description="Duration of a video, in seconds."
    )
    has_thumbnail: bool = strawberry.field(description="True when a JPEG thumbnail exists.")
    sha256: str | None = strawberry.field(
        description="Hex SHA-256 of the original, stored byte for byte as uploaded."
    )
    thumbhash: str | None = strawberry.field(
        description="Base64 ThumbHash of the thumbnail: a placeholder to draw before loading."
    )
    playback_media_type: str | None = strawberry.field(
        description="MIME type of what streamUrl serves (the rendition, or the original when "
        "browsers use it as is); null unless SUCCESS."
    )
    video_codec: str | None = strawberry.field(description="Codec of the original's video.")
    audio_codec: str | None = strawberry.field(description="Codec of the original's audio.")
    camera_make: str | None = strawberry.field(description="Camera maker (EXIF or QuickTime).")
    camera_model: str | None = strawberry.field(description="Camera model (EXIF or QuickTime).")
    processing_stage: ProcessingStage | None = strawberry.field(
        description="While IN_PROGRESS, the step under way; when FAILED, the step that failed."
    )

    latitude = strawberry.field(
        resolver=resolve_latitude,
        description="Where it was taken (decimal degrees); only for its owner and admins.",
    )
    longitude = strawberry.field(
        resolver=resolve_longitude,
        description="Where it was taken (decimal degrees); only for its owner and admins.",
    )
    stream_url = strawberry.field(
        resolver=resolve_stream_url,
        description="Inline URL of what browsers play or show (the rendition; supports Range); "
        "null unless SUCCESS.",
    )
    download_url = strawberry.field(
        resolver=resolve_download_url,
        description="Download URL of the original as uploaded (Content-Disposition: attachment); "
        "null unless SUCCESS.",
    )
    hls_url = strawberry.field(
        resolver=resolve_hls_url,
        description="Adaptive streaming: the HLS master playlist (`/hls/{token}/master.m3u8`); "
        "its renditions and segments are relative URIs under the same token. Null unless the "
        "video has an HLS ladder.",
    )
    thumbnail_url = strawberry.field(
        resolver=resolve_thumbnail_url,
        description="JPEG thumbnail URL; null without a thumbnail.",
    )

    @classmethod
    def of(cls, media: models.Media) -> Media:
        """The GraphQL value of a stored media."""
        details = media.details
        done = media.status is models.MediaStatus.SUCCESS
        stage = media.processing_stage
        return cls(
            model=media,
            id=strawberry.ID(media.id),
            name=media.name,
            media_type=media.media_type,
            kind=MediaKind[media.kind.name],
            status=MediaStatus[media.status.name],
            failure_reason=media.failure_reason,
            size_bytes=None if media.size_bytes is None else float(media.size_bytes),
            media_date=media.media_date,
            created_at=media.created_at,
            updated_at=media.updated_at,
            width=media.width,
            height=media.height,
            duration_seconds=media.duration_seconds,
            has_thumbnail=media.has_thumbnail,
            sha256=media.sha256 if done else None,
            thumbhash=media.thumbhash,
            playback_media_type=media.playback_media_type if done else None,
            video_codec=details.video_codec if details else None,
            audio_codec=details.audio_codec if details else None,
            camera_make=details.camera_make if details else None,
            camera_model=details.camera_model if details else None,
            processing_stage=ProcessingStage[stage.name] if stage is not None else None,
        )


@strawberry.type(description="One media in a listing, with the cursor that points at it.")
class MediaEdge:
    """One media in a listing."""

    cursor: str = strawberry.field(description="Opaque position; pass it as `after`.")
    node: Media = strawberry.field(description="The media.")


@strawberry.type(description="Relay page information.")
class PageInfo:
    """Relay page information."""

    has_next_page: bool = strawberry.field(description="True when more media follow this page.")
    has_previous_page: bool = strawberry.field(
        description="True when this page started after a cursor."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge, if any.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last edge; pass it as `after`."
    )


@strawberry.type(description="A page of media, newest first (Relay connection).")
class MediaConnection:
    """A page of media, newest first."""

    edges: list[MediaEdge] = strawberry.field(description="The media of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the listing.")

    @classmethod
    def of(cls, page: models.MediaPage, *, after: str | None) -> MediaConnection:
        """The connection of one service page."""
        edges = [
            MediaEdge(
                cursor=encode_cursor(models.Cursor(item.created_at, item.id)), node=Media.of(item)
            )
            for item in page.items
        ]
        info = PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        )
        return cls(edges=edges, page_info=info)


@strawberry.input(description="Listing filters; every field is optional and they combine with AND.")
class MediaFilter:
    """Listing filters."""

    kind: MediaKind | None = strawberry.field(default=None, description="Only this kind.")
    status: MediaStatus | None = strawberry.field(default=None, description="Only this state.")
    media_date_from: datetime | None = strawberry.field(
        default=None, description="Captured at or after this instant (needs a timezone)."
    )
    media_date_to: datetime | None = strawberry.field(
        default=None, description="Captured before this instant, exclusive (needs a timezone)."
    )
    name_contains: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the name."
    )

    def to_model(self) -> models.MediaFilter:
        """The core's filter value."""
        return models.MediaFilter(
            kind=None if self.kind is None else models.MediaKind[self.kind.name],
            status=None if self.status is None else models.MediaStatus[self.status.name],
            date_from=self.media_date_from,
            date_to=self.media_date_to,
            name_contains=self.name_contains,
        )


_MIME_TYPES = [accepted.mime_type for accepted in models.ACCEPTED_TYPES]
_ACCEPTED = f"{', '.join(_MIME_TYPES[:-1])} or {_MIME_TYPES[-1]}"


@strawberry.input(description="What is about to be uploaded.")
class CreateUploadInput:
    """What is about to be uploaded."""

    file_name: str = strawberry.field(description="Original file name; becomes the media name.")
    media_type: str = strawberry.field(description=f"MIME type: {_ACCEPTED}.")
    size_bytes: float = strawberry.field(description="Exact size in bytes (a whole number).")
    media_date: datetime | None = strawberry.field(
        default=None, description="When the media was captured (needs a timezone)."
    )
    sha256: str | None = strawberry.field(
        default=None,
        description="SHA-256 of the whole file as 64 hex digits; checked once it is stored.",
    )


@strawberry.type(description="One HTTP header the upload request must carry.")
class HttpHeader:
    """One HTTP header."""

    name: str = strawberry.field(description="Header name.")
    value: str = strawberry.field(description="Header value.")


@strawberry.type(
    description="A single-use ticket: PUT the bytes to uploadUrl, then call completeUpload."
)
class UploadTicket:
    """A single-use upload ticket."""

    upload_id: strawberry.ID = strawberry.field(description="Pass it to completeUpload.")
    upload_url: str = strawberry.field(description="Signed URL to send the bytes to; a secret.")
    method: str = strawberry.field(description="HTTP method of the upload request (PUT).")
    headers: list[HttpHeader] = strawberry.field(
        description="Headers the upload request must send."
    )
    expires_at: datetime = strawberry.field(description="When the upload URL stops working.")
    max_bytes: float = strawberry.field(description="The exact number of bytes to send.")
    media: Media = strawberry.field(description="The media row, IN_PROGRESS until processed.")

    @classmethod
    def of(cls, ticket: models.UploadTicket) -> UploadTicket:
        """The GraphQL value of an upload ticket."""
        return cls(
            upload_id=strawberry.ID(str(ticket.upload_id)),
            upload_url=ticket.url.url,
            method=ticket.method,
            headers=[HttpHeader(name=name, value=value) for name, value in ticket.headers],
            expires_at=ticket.url.expires_at,
            max_bytes=float(ticket.max_bytes),
            media=Media.of(ticket.media),
        )
