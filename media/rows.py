"""Rows and models: Piccolo result rows as the frozen models, and models as rows to write."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from media.clock import aware, utc
from media.ids import new_media_id
from media.models import (
    Envelope,
    HlsFile,
    Media,
    MediaKind,
    MediaMetadata,
    MediaStatus,
    MediaType,
    NewMedia,
    Owner,
    ProbeResult,
    ProcessingStage,
    Rendition,
    Thumbnail,
    UploadRequest,
    UploadState,
)


def to_media_type(row: Mapping[str, Any]) -> MediaType:
    """A media_type row as a model."""
    return MediaType(row["extension"], row["mime_type"], MediaKind(row["kind"]))


def to_media(
    row: Mapping[str, Any],
    thumbnail: Thumbnail | None = None,
    rendition: Rendition | None = None,
    details: MediaMetadata | None = None,
    owner: Owner | None = None,
    has_hls: bool = False,
) -> Media:
    """A media row (with its thumbnail, rendition, details) as a model in aware UTC."""
    return Media(
        id=row["public_id"],
        name=row["name"],
        media_type=row["media_type"],
        kind=MediaKind(row["kind"]),
        status=MediaStatus(row["status"]),
        storage_key=row["storage_key"],
        url_generation=row["url_generation"],
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        failure_reason=row["failure_reason"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        etag=row["etag"],
        width=row["width"],
        height=row["height"],
        duration_seconds=row["duration_seconds"],
        has_thumbnail=bool(row["has_thumbnail"]),
        media_date=utc(row["media_date"]),
        thumbnail=thumbnail,
        rendition=rendition,
        thumbhash=row["thumbhash"],
        processing_stage=ProcessingStage(stage) if (stage := row["processing_stage"]) else None,
        details=details,
        owner=owner,
        has_hls=has_hls,
    )


# Everything one media row has beside it (details, owner, thumbnail, rendition, whether an HLS
# ladder exists); every media has a metadata and a binding row from its creation on.
ATTACHED_SQL = (
    "SELECT d.*, b.owner_subject, b.owner_issuer,"
    " t.storage_key AS t_key, t.width AS t_width, t.height AS t_height,"
    " t.size_bytes AS t_size, t.etag AS t_etag,"
    " r.storage_key AS r_key, r.media_type AS r_type, r.width AS r_width,"
    " r.height AS r_height, r.size_bytes AS r_size, r.etag AS r_etag, h.id AS h_master"
    " FROM media_metadata d JOIN user_media_binding b ON b.media = d.media"
    " LEFT JOIN thumbnail t ON t.media = d.media LEFT JOIN rendition r ON r.media = d.media"
    " LEFT JOIN hls_file h ON h.media = d.media AND h.name = 'master.m3u8'"
)


def with_attachments(row: dict[str, Any], attached: dict[str, Any] | None) -> Media:
    """The media model of a row and its ATTACHED_SQL row (None when there is none)."""
    if attached is None:
        return to_media(row)
    media_id = row["public_id"]
    thumbnail = rendition = None
    if attached["t_key"] is not None and row["has_thumbnail"]:
        thumbnail = Thumbnail(
            media_id=media_id,
            storage_key=attached["t_key"],
            width=attached["t_width"],
            height=attached["t_height"],
            size_bytes=attached["t_size"],
            etag=attached["t_etag"],
        )
    if attached["r_key"] is not None:
        rendition = Rendition(
            media_id=media_id,
            storage_key=attached["r_key"],
            media_type=attached["r_type"],
            width=attached["r_width"],
            height=attached["r_height"],
            size_bytes=attached["r_size"],
            etag=attached["r_etag"],
        )
    owner = Owner(attached["owner_subject"], attached["owner_issuer"])
    details = to_metadata(attached, media_id)
    has_hls = attached["h_master"] is not None
    return to_media(row, thumbnail, rendition, details, owner, has_hls)


def to_upload(row: Mapping[str, Any], media_id: str) -> UploadRequest:
    """An upload_request row of the media with public id `media_id` as a model."""
    return UploadRequest(
        id=row["id"] if isinstance(row["id"], uuid.UUID) else uuid.UUID(str(row["id"])),
        media_id=media_id,
        owner=Owner(subject=row["owner_subject"], issuer=row["owner_issuer"]),
        state=UploadState(row["state"]),
        declared_size=row["declared_size"],
        declared_type=row["declared_type"],
        expires_at=aware(row["expires_at"]),
        created_at=aware(row["created_at"]),
        completed_at=utc(row["completed_at"]),
        temp_key=row["temp_key"],
        part_size=row["part_size"],
        multipart_id=row["multipart_id"],
        sha256=row["sha256"],
    )


def to_metadata(row: Mapping[str, Any], media_id: str) -> MediaMetadata:
    """A media_metadata row of the media with public id `media_id` as a model."""
    return MediaMetadata(
        media_id=media_id,
        original_file_name=row["original_file_name"],
        file_date=utc(row["file_date"]),
        container=row["container"],
        video_codec=row["video_codec"],
        audio_codec=row["audio_codec"],
        bit_rate=row["bit_rate"],
        camera_make=row["camera_make"],
        camera_model=row["camera_model"],
        latitude=row["latitude"],
        longitude=row["longitude"],
    )


def rendition_row(table: Any, media_key: int, rendition: Rendition) -> Any:
    """A rendition row of `table` (a bound RenditionRow) for the model."""
    return table(
        media=media_key,
        storage_key=rendition.storage_key,
        media_type=rendition.media_type,
        width=rendition.width,
        height=rendition.height,
        size_bytes=rendition.size_bytes,
        etag=rendition.etag,
    )


def hls_file_row(table: Any, media_key: int, file: HlsFile) -> Any:
    """An hls_file row of `table` (a bound HlsFileRow) for the model."""
    return table(
        media=media_key,
        name=file.name,
        storage_key=file.storage_key,
        content_type=file.content_type,
        size_bytes=file.size_bytes,
        etag=file.etag,
    )


def to_hls_file(row: Mapping[str, Any]) -> HlsFile:
    """An hls_file row as a model."""
    return HlsFile(
        name=row["name"],
        storage_key=row["storage_key"],
        content_type=row["content_type"],
        size_bytes=row["size_bytes"],
        etag=row["etag"],
    )


def thumbnail_row(table: Any, media_key: int, thumbnail: Thumbnail) -> Any:
    """A thumbnail row of `table` (a bound ThumbnailRow) for the model."""
    return table(
        media=media_key,
        storage_key=thumbnail.storage_key,
        width=thumbnail.width,
        height=thumbnail.height,
        size_bytes=thumbnail.size_bytes,
        etag=thumbnail.etag,
    )


def new_media_row(table: Any, new: NewMedia, now: datetime) -> Any:
    """A new IN_PROGRESS media row of `table` (a bound MediaRow)."""
    return table(
        public_id=new_media_id(),
        name=new.name,
        name_folded=new.name.casefold(),
        media_type=new.media_type.mime_type,
        kind=new.media_type.kind.value,
        status=MediaStatus.IN_PROGRESS.value,
        size_bytes=new.size_bytes,
        storage_key=new.storage_key,
        media_date=utc(new.media_date),
        created_at=now,
        updated_at=now,
    )


def new_binding_row(table: Any, media_key: int, owner: Owner, now: datetime) -> Any:
    """A user_media_binding row of `table`; created_at copies the media's."""
    return table(
        media=media_key, owner_subject=owner.subject, owner_issuer=owner.issuer, created_at=now
    )


def new_upload_row(table: Any, media_key: int, owner: Owner, new: NewMedia, now: datetime) -> Any:
    """A new PENDING upload_request row of `table` (a bound UploadRequestRow)."""
    return table(
        id=new.upload_id,
        media=media_key,
        owner_subject=owner.subject,
        owner_issuer=owner.issuer,
        state=UploadState.PENDING.value,
        declared_size=new.size_bytes,
        declared_type=new.media_type.mime_type,
        expires_at=aware(new.upload_expires_at),
        created_at=now,
        part_size=new.part_size,
        multipart_id=new.multipart_id,
        sha256=new.sha256,
        # A multipart upload names its object from the start: the collector must not take it.
        temp_key=new.storage_key if new.multipart_id is not None else None,
    )


def success_values(
    table: Any, probe: ProbeResult, has_thumbnail: bool, now: datetime
) -> dict[Any, Any]:
    """The media columns a successful probe sets."""
    return {
        table.processing_stage: None,
        table.status: MediaStatus.SUCCESS.value,
        table.failure_reason: None,
        table.media_type: probe.mime_type,
        table.kind: probe.kind.value,
        table.width: probe.width,
        table.height: probe.height,
        table.duration_seconds: probe.duration_seconds,
        table.has_thumbnail: has_thumbnail,
        table.updated_at: now,
    }


def metadata_values(table: Any, probe: ProbeResult) -> dict[Any, Any]:
    """The media_metadata columns a probe sets."""
    return {
        table.file_date: utc(probe.captured_at),
        table.container: probe.container,
        table.video_codec: probe.video_codec,
        table.audio_codec: probe.audio_codec,
        table.bit_rate: probe.bit_rate,
        table.camera_make: probe.camera_make,
        table.camera_model: probe.camera_model,
        table.latitude: probe.latitude,
        table.longitude: probe.longitude,
    }


def to_envelope(row: Mapping[str, Any]) -> Envelope:
    """An object_envelope row as a model."""
    return Envelope(
        storage_key=row["storage_key"],
        format=row["format"],
        master_key_id=row["master_key_id"],
        wrapped_key=base64.b64decode(row["wrapped_key"]),
        header=base64.b64decode(row["header"]),
    )


def envelope_row(table: Any, envelope: Envelope, now: datetime) -> Any:
    """An object_envelope row of `table` (a bound ObjectEnvelopeRow) for the model."""
    return table(
        storage_key=envelope.storage_key,
        format=envelope.format,
        master_key_id=envelope.master_key_id,
        wrapped_key=base64.b64encode(envelope.wrapped_key).decode("ascii"),
        header=base64.b64encode(envelope.header).decode("ascii"),
        created_at=now,
    )
