"""Frozen values the edges see. Never Piccolo rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


class MediaKind(enum.StrEnum):
    """What a media is, decided by its type."""

    VIDEO = "video"
    IMAGE = "image"


class MediaStatus(enum.StrEnum):
    """The life of a media row as users see it."""

    IN_PROGRESS = "in_progress"
    SUCCESS = "success"
    FAILED = "failed"


class UploadState(enum.StrEnum):
    """The life of one upload request (single-use ticket)."""

    PENDING = "pending"
    RECEIVING = "receiving"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"


SHARE_TITLE_LENGTH = 200  # the widest title a share link stores
NAME_LENGTH = 255  # the widest file name a media stores

# Uploads that may still receive or process bytes.
OPEN_UPLOAD_STATES = frozenset({UploadState.PENDING, UploadState.RECEIVING, UploadState.PROCESSING})


class ProcessingStage(enum.StrEnum):
    """The step processing is at; kept on a failed media to say where it failed."""

    PROBE = "probe"
    RENDITION = "rendition"
    THUMBNAIL = "thumbnail"
    HLS = "hls"


class Scope(enum.StrEnum):
    """Scopes carried by bearer tokens."""

    USER = "user"
    ADMIN = "admin"
    ANONYMOUS = "anonymous"


class Purpose(enum.StrEnum):
    """What a signed URL may be used for; one itsdangerous salt each."""

    STREAM = "stream"
    DOWNLOAD = "download"
    THUMBNAIL = "thumbnail"
    UPLOAD = "upload"
    UPLOAD_PART = "upload_part"
    HLS = "hls"  # every file of a video's HLS ladder, under one token in the path


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller: OIDC subject and issuer, plus scopes."""

    subject: str
    issuer: str
    scopes: frozenset[str]
    # Unix time after which its token no longer authenticates (exp plus the leeway); None for
    # the anonymous caller. What a long-lived connection (a WebSocket) checks on each use.
    valid_until: float | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        """True when the caller may see and change every owner's media."""
        return Scope.ADMIN in self.scopes

    @property
    def is_user(self) -> bool:
        """True when the caller may own media."""
        return Scope.USER in self.scopes or self.is_admin

    @property
    def is_anonymous(self) -> bool:
        """True for a caller without a token."""
        return not self.subject


ANONYMOUS = Principal(subject="", issuer="", scopes=frozenset({Scope.ANONYMOUS}))


@dataclass(frozen=True, slots=True)
class Owner:
    """Who owns a media: the OIDC subject within its issuer."""

    subject: str
    issuer: str

    @classmethod
    def of(cls, principal: Principal) -> Owner:
        """The owner identity of a principal."""
        return cls(subject=principal.subject, issuer=principal.issuer)


@dataclass(frozen=True, slots=True)
class MediaType:
    """One allowed type: file extension, MIME type and kind."""

    extension: str
    mime_type: str
    kind: MediaKind


_VIDEO, _IMAGE = MediaKind.VIDEO, MediaKind.IMAGE
# The accepted types, the one list: the extension a download's file name gets, MIME type, kind.
# The media_type table holds the same types (its migrations seed them; a test compares).
ACCEPTED_TYPES = (
    MediaType("mp4", "video/mp4", _VIDEO),
    MediaType("mov", "video/quicktime", _VIDEO),
    MediaType("webm", "video/webm", _VIDEO),
    MediaType("mkv", "video/x-matroska", _VIDEO),
    MediaType("jpg", "image/jpeg", _IMAGE),
    MediaType("png", "image/png", _IMAGE),
    MediaType("webp", "image/webp", _IMAGE),
    MediaType("gif", "image/gif", _IMAGE),
    MediaType("heic", "image/heic", _IMAGE),
    MediaType("heif", "image/heif", _IMAGE),
    MediaType("avif", "image/avif", _IMAGE),
)


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """The JPEG preview of a media."""

    media_id: str
    storage_key: str
    width: int
    height: int
    size_bytes: int
    etag: str


@dataclass(frozen=True, slots=True)
class Rendition:
    """What a browser plays or shows for a media whose original it cannot use as is."""

    media_id: str
    storage_key: str
    media_type: str
    width: int
    height: int
    size_bytes: int
    etag: str


@dataclass(frozen=True, slots=True)
class HlsFile:
    """One file of a video's HLS ladder, served by its exact name under the token path."""

    name: str  # "master.m3u8", "720p/index.m3u8", "720p/init.mp4", "720p/seg_00001.m4s"
    storage_key: str
    content_type: str
    size_bytes: int
    etag: str


@dataclass(frozen=True, slots=True)
class Media:
    """One media as stored: metadata of the original and its state."""

    id: str  # the public opaque id (media/ids.py); the integer row key never leaves the database
    name: str
    media_type: str
    kind: MediaKind
    status: MediaStatus
    storage_key: str
    url_generation: int
    created_at: datetime
    updated_at: datetime
    failure_reason: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    etag: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    has_thumbnail: bool = False
    media_date: datetime | None = None
    thumbnail: Thumbnail | None = None
    rendition: Rendition | None = None
    thumbhash: str | None = None
    processing_stage: ProcessingStage | None = None
    details: MediaMetadata | None = None
    owner: Owner | None = None
    has_hls: bool = False  # an HLS ladder was stored (docs/hls.md)

    def shows_location_to(self, principal: Principal) -> bool:
        """Where it was taken is for its owner and admins only, never through a share."""
        if principal.is_anonymous or not principal.is_user:
            return False
        return principal.is_admin or (self.owner is not None and self.owner == Owner.of(principal))

    @property
    def playback_media_type(self) -> str:
        """The type of what the stream URL serves: the rendition's, else the original's."""
        return self.rendition.media_type if self.rendition is not None else self.media_type


@dataclass(frozen=True, slots=True)
class MediaMetadata:
    """Details of the original as uploaded and probed."""

    media_id: str
    original_file_name: str
    file_date: datetime | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    bit_rate: int | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """One single-use upload ticket as stored."""

    id: UUID
    media_id: str
    owner: Owner
    state: UploadState
    declared_size: int
    declared_type: str
    expires_at: datetime
    created_at: datetime
    completed_at: datetime | None = None
    temp_key: str | None = None
    part_size: int | None = None  # set for multipart uploads
    multipart_id: str | None = None  # the storage's id of the multipart upload
    sha256: str | None = None  # hex digest the client declared, checked at completion

    @property
    def part_count(self) -> int:
        """How many parts a multipart upload has (1 for a single PUT)."""
        if self.part_size is None:
            return 1
        return max(1, -(-self.declared_size // self.part_size))

    def part_length(self, number: int) -> int:
        """The exact size of part `number` (1-based): part_size, the last one the remainder."""
        size = self.part_size or self.declared_size
        return min(size, self.declared_size - (number - 1) * size)

    def part(self, number: int) -> PartSlot:
        """Where part `number` (1-based) sits in the object."""
        offset = (number - 1) * (self.part_size or self.declared_size)
        return PartSlot(number, offset, self.part_length(number), last=number == self.part_count)


@dataclass(frozen=True, slots=True)
class NewMedia:
    """Validated input to create a media and its upload request."""

    name: str
    media_type: MediaType
    size_bytes: int
    original_file_name: str
    media_date: datetime | None
    storage_key: str
    upload_id: UUID
    upload_expires_at: datetime
    sha256: str | None = None
    part_size: int | None = None
    multipart_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What processing learned of a stored object; width and height as displayed."""

    mime_type: str
    kind: MediaKind
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    captured_at: datetime | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    bit_rate: int | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    # Video only: how the stored frames become the displayed picture.
    rotation: int = 0  # degrees counterclockwise, as FFmpeg's display matrix says
    sample_aspect: tuple[int, int] = (1, 1)
    pixel_format: str | None = None
    faststart: bool | None = None
    hdr: bool = False  # pictures in an HDR transfer (PQ or HLG): browsers get them as SDR


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What storage knows of one object."""

    size: int
    etag: str
    last_modified: datetime
    content_type: str | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class PartSlot:
    """Where one part of a multipart upload goes: its number, byte offset and exact size; `last`
    when it ends the object."""

    number: int
    offset: int
    size: int
    last: bool = False


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One received part of a multipart upload, as the storage lists it."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class MultipartState:
    """A multipart upload and the parts received so far (for a client resuming it)."""

    upload: UploadRequest
    parts: tuple[PartInfo, ...]
    media: Media


@dataclass(frozen=True, slots=True)
class PartUrl:
    """A signed URL for one part: PUT exactly `size` bytes to it."""

    number: int
    url: SignedUrl
    size: int
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SignedUrl:
    """An absolute signed URL and when it stops working."""

    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class UrlClaims:
    """The verified contents of a signed URL token."""

    purpose: Purpose
    media_id: str
    subject: str
    generation: int
    expires_at: datetime
    upload_id: UUID | None = None
    max_bytes: int | None = None
    content_type: str | None = None
    link_id: str | None = None  # set when the URL was minted through a share link
    part_number: int | None = None


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """What createUpload hands out: where and how to PUT the bytes."""

    upload_id: UUID
    url: SignedUrl
    method: str
    headers: tuple[tuple[str, str], ...]
    max_bytes: int
    media: Media


@dataclass(frozen=True, slots=True)
class MediaFilter:
    """Listing filters; None means any."""

    kind: MediaKind | None = None
    status: MediaStatus | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    name_contains: str | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position in a listing: created_at and media id of the last item seen."""

    created_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class MediaPage:
    """One page of a listing."""

    items: tuple[Media, ...]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """What the streaming edge needs to serve one signed URL."""

    storage_key: str
    content_type: str
    size: int
    etag: str
    last_modified: datetime
    disposition: str
    file_name: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ShareLink:
    """One share link as stored: a capability token granting anonymous viewers some media."""

    id: str
    token: str
    owner: Owner
    title: str | None
    expires_at: datetime
    allow_download: bool
    password_hash: str | None = field(repr=False)
    view_count: int
    created_at: datetime
    media_ids: tuple[str, ...]

    @property
    def has_password(self) -> bool:
        """True when viewers must give a password."""
        return self.password_hash is not None


@dataclass(frozen=True, slots=True)
class NewShareLink:
    """Validated input to store a share link."""

    id: str
    token: str
    title: str | None
    expires_at: datetime
    allow_download: bool
    password_hash: str | None = field(repr=False)
    media_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShareGrant:
    """What a link grants to URLs minted through it (cached on the streaming path)."""

    link_id: str
    expires_at: datetime
    allow_download: bool
    media_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class ShareCursor:
    """Keyset position in the listing of share links."""

    created_at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class ShareLinkPage:
    """One page of the caller's share links."""

    items: tuple[ShareLink, ...]
    has_next_page: bool


class ShareAccess(enum.StrEnum):
    """The outcome of opening a link; only GRANTED shows anything."""

    UNKNOWN = "unknown"  # no such token, or revoked
    EXPIRED = "expired"
    PASSWORD_REQUIRED = "password_required"  # noqa: S105 - a state, not a secret
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - a state, not a secret
    RATE_LIMITED = "rate_limited"
    GRANTED = "granted"


@dataclass(frozen=True, slots=True)
class SharedSet:
    """The result of opening a link: its access state, and when granted the link and its media."""

    access: ShareAccess
    link: ShareLink | None = None
    medias: tuple[Media, ...] = ()


@dataclass(frozen=True, slots=True)
class Envelope:
    """How one stored object is encrypted: its wrapped data key and the object's header."""

    storage_key: str
    format: str  # the chunked-AEAD format of the bytes at rest
    master_key_id: str  # which MEDIA_ENCRYPTION_KEYS entry wrapped the data key
    wrapped_key: bytes  # nonce || AES-GCM(master key, data key) || tag
    header: bytes  # salt || key commitment, also the first bytes of the object


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One durable job to enqueue in the same transaction as the state change that makes it due."""

    queue: str
    task: str
    lock: str  # jobs sharing a lock never run at the same time (one per media)
    args: tuple[tuple[str, str], ...]


class MediaEventKind(enum.StrEnum):
    """What happened to a media, as other processes hear of it."""

    STATUS = "status"  # processing ended: SUCCESS or FAILED
    REVOKED = "revoked"  # URL generation bumped
    DELETED = "deleted"
    LINK_REVOKED = "link-revoked"  # a share link revoked: URLs minted through it stop


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """A change of one media that caches and subscriptions of every process must hear of."""

    kind: str
    media_id: str  # the public id; empty for a link event
    link_id: str = ""  # the share link of a LINK_REVOKED event
