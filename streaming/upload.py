"""PUT /upload/{token}: receive the bytes of one upload, straight into storage."""

from __future__ import annotations

from typing import Any

from litestar import Request, put
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Response

from media.config import Settings
from media.errors import InvalidInput, MediaError, NotFound, Unavailable
from media.service import MediaService
from media.service.multipart import MAX_PART_BYTES

# The body's word for each status a MediaError carries (media/errors.py).
_ERROR_WORDS = {
    400: "bad_request",
    403: "forbidden",
    408: "timeout",
    409: "conflict",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(request: Request[object, object, State], exc: Exception) -> Response[Any]:
    """Litestar handler: a core error as an upload answer; no detail for signature failures."""
    assert isinstance(exc, MediaError)
    # A URL that names nothing looks like any other unusable URL (docs/security.md §1.13).
    status = 403 if isinstance(exc, NotFound) else exc.status_code
    word = _ERROR_WORDS.get(status)
    if word is None:  # a bug: Litestar logged it with its trace (server/request_log.py)
        return Response({"error": "internal"}, status_code=500)
    body: dict[str, object] = {"error": word}
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    if isinstance(exc, Unavailable):
        body["error"] = f"{exc.dependency}_unavailable"
    elif status not in (403, 409) and exc.detail:
        body["message"] = exc.message()
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    return Response(body, status_code=status, headers=headers)


def _content_length(request: Request[object, object, State]) -> int | None:
    """The declared body length; InvalidInput when it is not a non-negative integer."""
    raw = request.headers.get("content-length")
    try:
        length = int(raw) if raw is not None else None
        if length is not None and length < 0:
            raise ValueError(raw)
    except ValueError:
        raise InvalidInput("bad Content-Length", field="Content-Length") from None
    return length


def upload_handler(settings: Settings) -> HTTPRouteHandler:
    """The PUT handler; its body limit is the upload limit, not Litestar's 10 MB default."""

    @put(
        "/upload/{token:str}",
        request_max_body_size=settings.max_upload_bytes,
        include_in_schema=False,
        status_code=202,
        exception_handlers={MediaError: error_response},
    )
    async def receive_upload(
        request: Request[object, object, State], token: FromPath[str], service: MediaService
    ) -> Response[dict[str, object]]:
        outcome = await service.uploads.receive(
            token,
            content_length=_content_length(request),
            content_type=request.headers.get("content-type"),
            body=request.stream(),
        )
        media = outcome.media
        body: dict[str, object] = {
            "uploadId": str(outcome.upload_id),
            "mediaId": media.id,
            "status": media.status.name,
        }
        if media.failure_reason is not None:  # reaped or failed before its job was queued
            body["failureReason"] = media.failure_reason
        # 202: the bytes are stored and the processing job is queued (or it already ended);
        # completeUpload, media(id) or the mediaUpdated subscription tell how it ends.
        headers = {"Cache-Control": "no-store"}
        if media.etag:  # the stored bytes' ETag, known as soon as they are in
            headers["ETag"] = f'"{media.etag}"'
        return Response(body, status_code=202, headers=headers)

    return receive_upload


def part_handler(settings: Settings) -> HTTPRouteHandler:
    """The part PUT; its body limit is one part (at most 5 GiB), on this route only."""

    @put(
        "/upload/parts/{token:str}",
        request_max_body_size=min(settings.max_upload_bytes, MAX_PART_BYTES),
        include_in_schema=False,
        status_code=200,
        exception_handlers={MediaError: error_response},
    )
    async def receive_part(
        request: Request[object, object, State], token: FromPath[str], service: MediaService
    ) -> Response[dict[str, object]]:
        part = await service.multipart.receive_part(
            token, content_length=_content_length(request), body=request.stream()
        )
        body: dict[str, object] = {
            "partNumber": part.number,
            "sizeBytes": part.size,
            "etag": part.etag,
        }
        headers = {"Cache-Control": "no-store", "ETag": f'"{part.etag}"'}
        return Response(body, status_code=200, headers=headers)

    return receive_part
