"""Processing as a durable job: enqueued with the state change, run by any worker, retried."""

from __future__ import annotations

import contextlib
import logging
from uuid import UUID

import anyio

from media.errors import MediaError, Unavailable
from media.jobs import JOB_ATTEMPTS, JobQueue
from media.models import Media, MediaStatus, ObjectInfo, UploadRequest, UploadState
from media.service.context import Parts
from media.service.ingest import Ingest

logger = logging.getLogger("media.jobs")

STOPPED_REASON = "processing stopped, try again"


class Processing:
    """Queues stored uploads and runs the job that turns one into SUCCESS or FAILED."""

    def __init__(self, parts: Parts, ingest: Ingest, queue: JobQueue) -> None:
        self._parts = parts
        self._ingest = ingest
        self.queue = queue

    async def enqueue(self, media: Media, upload: UploadRequest, stored: ObjectInfo) -> Media:
        """Mark the upload PROCESSING and enqueue its job in one transaction; the media as now."""
        repo = self._parts.repository
        with anyio.CancelScope(shield=True):  # the client may hang up now: the bytes are in
            try:
                queued = await repo.queue_processing(
                    upload.id, media.id, stored, self.queue.job_for(upload.id, media.id)
                )
            except MediaError as exc:
                logger.warning("could not queue upload %s: %s", upload.id, exc.code)
                with contextlib.suppress(MediaError):  # the reaper fails it when this fails too
                    await self._ingest.fail(
                        media, upload, "could not queue processing", (media.storage_key,)
                    )
                raise Unavailable("job queue", dependency="database") from exc
            if queued is not None:
                self.queue.submitted(upload.id)
                return queued
            current = await repo.get_media(media.id, None)  # reaped or failed meanwhile
        return current or media

    async def run_job(self, upload_id: UUID, attempt: int) -> None:
        """The job: process one queued upload. Raises (to be retried) on a passing outage while
        attempts remain; the last attempt ends in SUCCESS or FAILED with a reason."""
        repo = self._parts.repository
        upload = await repo.get_upload(upload_id)
        if upload is None or upload.state is not UploadState.PROCESSING:
            return  # done, failed or deleted meanwhile: a retried job has nothing left to do
        media = await repo.get_media(upload.media_id, None)
        if media is None or media.status is not MediaStatus.IN_PROGRESS:
            return
        if attempt >= JOB_ATTEMPTS:  # the workers of every attempt died mid-job
            await self._ingest.fail(media, upload, STOPPED_REASON, (media.storage_key,))
            return
        stored = ObjectInfo(
            size=media.size_bytes or 0,
            etag=media.etag or "",
            last_modified=media.updated_at,
            sha256=media.sha256 or None,
        )
        final = attempt + 1 >= JOB_ATTEMPTS
        done = await self._ingest.run(media, upload, stored, final=final)
        logger.info("upload %s processed: %s", upload_id, done.status.value)

    async def pending(self) -> tuple[UUID, ...]:
        """Uploads queued or processing (the in-process queue restarts them)."""
        return await self._parts.repository.uploads_in_state(UploadState.PROCESSING)
