"""GraphQL types of multipart uploads (the shape of Uppy's S3 multipart callbacks)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.types import HttpHeader, Media
from media import models


@strawberry.type(description="One part the server has received, as its own part list says.")
class ReceivedPart:
    """One received part."""

    part_number: int = strawberry.field(description="1-based part number.")
    size_bytes: float = strawberry.field(description="Bytes stored for this part.")
    etag: str = strawberry.field(description="The part's entity tag (informational).")


@strawberry.type(
    description="An upload sent in parts: sign part URLs, PUT the parts in any order and in "
    "parallel, then completeUpload. Survives dropped connections and restarted clients."
)
class MultipartUpload:
    """An upload sent in parts."""

    upload_id: strawberry.ID = strawberry.field(
        description="Pass it to signUploadParts, upload and completeUpload."
    )
    part_size: float = strawberry.field(description="Bytes per part; the last part the rest.")
    part_count: int = strawberry.field(description="Number of parts, 1 to 10000.")
    size_bytes: float = strawberry.field(description="Size of the whole file.")
    expires_at: datetime = strawberry.field(
        description="When the upload is aborted unless completed (MEDIA_MULTIPART_TTL_S)."
    )
    received_parts: list[ReceivedPart] = strawberry.field(
        description="Parts received so far, by number: resume by sending only the others."
    )
    media: Media = strawberry.field(description="The media row, IN_PROGRESS until processed.")

    @classmethod
    def of(cls, state: models.MultipartState) -> MultipartUpload:
        """The GraphQL value of a multipart upload."""
        upload = state.upload
        return cls(
            upload_id=strawberry.ID(str(upload.id)),
            part_size=float(upload.part_size or upload.declared_size),
            part_count=upload.part_count,
            size_bytes=float(upload.declared_size),
            expires_at=upload.expires_at,
            received_parts=[
                ReceivedPart(part_number=part.number, size_bytes=float(part.size), etag=part.etag)
                for part in state.parts
            ],
            media=Media.of(state.media),
        )


@strawberry.type(description="A short-lived signed URL for one part: PUT exactly sizeBytes.")
class UploadPartUrl:
    """A signed URL for one part."""

    part_number: int = strawberry.field(description="1-based part number.")
    url: str = strawberry.field(description="Signed URL to PUT the part to; a secret.")
    method: str = strawberry.field(description="HTTP method of the part request (PUT).")
    headers: list[HttpHeader] = strawberry.field(description="Headers the part request carries.")
    size_bytes: float = strawberry.field(description="The exact number of bytes of this part.")
    expires_at: datetime = strawberry.field(description="When this URL stops working.")

    @classmethod
    def of(cls, part: models.PartUrl) -> UploadPartUrl:
        """The GraphQL value of a part URL."""
        return cls(
            part_number=part.number,
            url=part.url.url,
            method="PUT",
            headers=[HttpHeader(name=name, value=value) for name, value in part.headers],
            size_bytes=float(part.size),
            expires_at=part.url.expires_at,
        )
