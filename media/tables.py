"""Piccolo tables: the stored shape of media, uploads and their details."""

from __future__ import annotations

from piccolo.columns import (
    UUID,
    BigInt,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    OnDelete,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from media.ids import MEDIA_ID_LENGTH
from media.models import (
    NAME_LENGTH,
    SHARE_TITLE_LENGTH,
)
from migrations import Identity  # the history's column type, shared so the two agree

SUBJECT_LENGTH = 255
ISSUER_LENGTH = 512
KEY_LENGTH = 512
LINK_ID_LENGTH = 32
LINK_TOKEN_LENGTH = 64
HLS_NAME_LENGTH = 64  # "1080p/seg_00001.m4s" and the like
MULTIPART_ID_LENGTH = 1024  # S3 upload ids are opaque; AWS's run to about 200 characters


class MediaTypeRow(Table, tablename="media_type"):
    """One allowed type: extension, MIME type and kind (seeded by migration)."""

    extension = Varchar(length=16, primary_key=True)
    mime_type = Varchar(length=127, index=True)
    kind = Varchar(length=16)


class MediaRow(Table, tablename="media"):
    """One media: the original object and its processing state."""

    id = Identity(primary_key=True)
    # The id clients see (media/ids.py). Nullable and without UNIQUE here because SQLite cannot
    # add a UNIQUE column to a table; a migration backfills it and adds the unique index.
    public_id = Varchar(length=MEDIA_ID_LENGTH, null=True, default=None)
    name = Varchar(length=NAME_LENGTH)
    # casefold() of name: case-insensitive search that behaves alike on both engines.
    name_folded = Varchar(length=NAME_LENGTH * 3)
    media_type = Varchar(length=127)
    kind = Varchar(length=16)
    status = Varchar(length=16)
    failure_reason = Varchar(length=255, null=True, default=None)
    size_bytes = BigInt(null=True, default=None)
    sha256 = Varchar(length=64, null=True, default=None)
    storage_key = Varchar(length=KEY_LENGTH, unique=True)
    etag = Varchar(length=255, null=True, default=None)
    width = Integer(null=True, default=None)
    height = Integer(null=True, default=None)
    duration_seconds = DoublePrecision(null=True, default=None)
    has_thumbnail = Boolean(default=False)
    media_date = Timestamptz(null=True, default=None)
    url_generation = BigInt(default=0)
    created_at = Timestamptz()
    updated_at = Timestamptz()
    # Base64 ThumbHash of the thumbnail: a placeholder a client can draw before any request.
    thumbhash = Varchar(length=64, null=True, default=None)
    # The processing step under way (probe, rendition, thumbnail), or the one that failed.
    processing_stage = Varchar(length=16, null=True, default=None)


class UserMediaBindingRow(Table, tablename="user_media_binding"):
    """Who owns a media; created_at is copied from media so listings use one index."""

    media = ForeignKey(references=MediaRow, null=False, unique=True, on_delete=OnDelete.cascade)
    owner_subject = Varchar(length=SUBJECT_LENGTH)
    owner_issuer = Varchar(length=ISSUER_LENGTH)
    created_at = Timestamptz()


class MediaMetadataRow(Table, tablename="media_metadata"):
    """Details of the original as uploaded and probed."""

    media = ForeignKey(
        references=MediaRow, null=False, primary_key=True, on_delete=OnDelete.cascade
    )
    original_file_name = Varchar(length=NAME_LENGTH)
    file_date = Timestamptz(null=True, default=None)
    container = Varchar(length=64, null=True, default=None)
    video_codec = Varchar(length=64, null=True, default=None)
    audio_codec = Varchar(length=64, null=True, default=None)
    bit_rate = BigInt(null=True, default=None)
    camera_make = Varchar(length=NAME_LENGTH, null=True, default=None)
    camera_model = Varchar(length=NAME_LENGTH, null=True, default=None)
    latitude = DoublePrecision(null=True, default=None)
    longitude = DoublePrecision(null=True, default=None)


class RenditionRow(Table, tablename="rendition"):
    """What a browser is served for a media whose original it cannot show as is."""

    media = ForeignKey(
        references=MediaRow, null=False, primary_key=True, on_delete=OnDelete.cascade
    )
    storage_key = Varchar(length=KEY_LENGTH, unique=True)
    media_type = Varchar(length=127)
    width = Integer()
    height = Integer()
    size_bytes = BigInt()
    etag = Varchar(length=255)


class HlsFileRow(Table, tablename="hls_file"):
    """One file of a video's HLS ladder: the exact name URLs use, and the object holding it."""

    # Unique with name (index hls_file_media_name, made by its migration): one lookup per request.
    media = ForeignKey(references=MediaRow, null=False, on_delete=OnDelete.cascade)
    name = Varchar(length=HLS_NAME_LENGTH)
    storage_key = Varchar(length=KEY_LENGTH, unique=True)
    content_type = Varchar(length=64)
    size_bytes = BigInt()
    etag = Varchar(length=255)


class ThumbnailRow(Table, tablename="thumbnail"):
    """The JPEG preview of a media."""

    media = ForeignKey(
        references=MediaRow, null=False, primary_key=True, on_delete=OnDelete.cascade
    )
    storage_key = Varchar(length=KEY_LENGTH, unique=True)
    width = Integer()
    height = Integer()
    size_bytes = BigInt()
    etag = Varchar(length=255)


class UploadRequestRow(Table, tablename="upload_request"):
    """One single-use upload ticket and its state."""

    id = UUID(primary_key=True)
    media = ForeignKey(references=MediaRow, null=False, index=True, on_delete=OnDelete.cascade)
    owner_subject = Varchar(length=SUBJECT_LENGTH)
    owner_issuer = Varchar(length=ISSUER_LENGTH)
    state = Varchar(length=16)
    declared_size = BigInt()
    declared_type = Varchar(length=127)
    expires_at = Timestamptz()
    created_at = Timestamptz()
    completed_at = Timestamptz(null=True, default=None)
    temp_key = Varchar(length=KEY_LENGTH, null=True, default=None)
    part_size = BigInt(null=True, default=None)
    multipart_id = Varchar(length=MULTIPART_ID_LENGTH, null=True, default=None)
    sha256 = Varchar(length=64, null=True, default=None)


class ShareLinkRow(Table, tablename="share_link"):
    """One share link: an unguessable token that grants anonymous viewers some media."""

    id = Varchar(length=LINK_ID_LENGTH, primary_key=True)
    token = Varchar(length=LINK_TOKEN_LENGTH, unique=True)
    owner_subject = Varchar(length=SUBJECT_LENGTH)
    owner_issuer = Varchar(length=ISSUER_LENGTH)
    title = Varchar(length=SHARE_TITLE_LENGTH, null=True, default=None)
    expires_at = Timestamptz()
    allow_download = Boolean(default=False)
    password_hash = Varchar(length=255, null=True, default=None)
    view_count = BigInt(default=0)
    # Wrong passwords in the current attempt window (a window number, so one UPDATE counts).
    failed_attempts = Integer(default=0)
    attempt_window = BigInt(default=0)
    created_at = Timestamptz()


class ShareLinkMediaRow(Table, tablename="share_link_media"):
    """One media of a link, in the order the owner gave; goes with the media or the link."""

    link = ForeignKey(references=ShareLinkRow, null=False, index=True, on_delete=OnDelete.cascade)
    media = ForeignKey(references=MediaRow, null=False, index=True, on_delete=OnDelete.cascade)
    position = Integer()


class ObjectEnvelopeRow(Table, tablename="object_envelope"):
    """How one stored object is encrypted at rest (no row: stored in plaintext)."""

    storage_key = Varchar(length=KEY_LENGTH, primary_key=True)
    format = Varchar(length=64)
    master_key_id = Varchar(length=64, index=True)
    wrapped_key = Varchar(length=128)  # base64
    header = Varchar(length=128)  # base64
    created_at = Timestamptz()


TABLES: tuple[type[Table], ...] = (
    MediaTypeRow,
    MediaRow,
    UserMediaBindingRow,
    MediaMetadataRow,
    ThumbnailRow,
    UploadRequestRow,
    ShareLinkRow,
    ShareLinkMediaRow,
    ObjectEnvelopeRow,
    RenditionRow,
    HlsFileRow,
)
