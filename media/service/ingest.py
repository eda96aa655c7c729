"""After the bytes are stored: check, probe, rendition, thumbnail, then SUCCESS or FAILED.

The original is never rewritten: renditions and thumbnails are new objects beside it, written
through the storage port like the original.
"""

from __future__ import annotations

import functools
import logging
import shutil
import uuid
from collections.abc import Iterable

import anyio
import anyio.from_thread

from media.errors import InvalidInput, MediaError, Unavailable
from media.models import (
    OPEN_UPLOAD_STATES,
    HlsFile,
    Media,
    ObjectInfo,
    ProcessingStage,
    Rendition,
    Thumbnail,
    UploadRequest,
    UploadState,
)
from media.processing import DECODE_BUDGET, LadderFile, Limits, Processed, process
from media.service.context import Parts
from media.storage.files import local_copy, store_file

logger = logging.getLogger("media.ingest")

# Ladder files stored at once: a ladder is hundreds of small objects, and one at a time the
# round trips to S3 would dominate; the storage port's own pool bounds the rest.
LADDER_UPLOADS = 8


class Ingest:
    """Turns a stored upload into a playable media, or fails it leaving nothing behind."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._limiter = anyio.CapacityLimiter(parts.settings.processing_workers)
        # Decoded pixels of all processing threads of this process stay within this.
        DECODE_BUDGET.configure(parts.settings.processing_memory_mb * 1024 * 1024)
        self._workroot = parts.scratch
        self._limits = Limits(
            playback_max_height=parts.settings.playback_max_height,
            max_duration_s=parts.settings.max_duration_s,
            hls_ladder=parts.settings.hls_ladder if parts.settings.hls_enabled else (),
        )

    async def run(
        self, media: Media, upload: UploadRequest, info: ObjectInfo, *, final: bool = True
    ) -> Media:
        """Process the stored original of a PROCESSING upload; returns the media as SUCCESS or
        FAILED. Unless `final`, an outage (Unavailable) is raised for the job to be retried."""
        workdir = self._workroot / uuid.uuid4().hex
        written: list[str] = [media.storage_key]
        try:
            workdir.mkdir(parents=True)
            source = workdir / "original"
            await local_copy(self._parts.storage, media.storage_key, source, size=info.size or None)
            work = functools.partial(
                process,
                source,
                upload.declared_type,
                workdir,
                limits=self._limits,
                on_stage=functools.partial(self._record_stage, media.id),
            )
            processed = await anyio.to_thread.run_sync(work, limiter=self._limiter)
            return await self._publish(media, upload, info, processed, written)
        except InvalidInput as exc:
            return await self.fail(
                media, upload, str(exc.data.get("reason") or exc.detail), written
            )
        except Unavailable as exc:
            if not final:
                logger.warning("processing media %s met an outage (%s); retrying", media.id, exc)
                await self._quiet_delete(written[1:])  # the original stays for the next attempt
                raise
            return await self.fail(media, upload, "processing failed, try again", written)
        except MediaError as exc:
            logger.warning("processing media %s failed: %s", media.id, exc.code)
            return await self.fail(media, upload, "processing failed, try again", written)
        except Exception:
            logger.exception("processing media %s crashed", media.id)
            return await self.fail(media, upload, "processing failed", written)
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, workdir, True)

    def _record_stage(self, media_id: str, stage: ProcessingStage) -> None:
        """Called from the processing thread: one conditional UPDATE, no notification."""

        async def record() -> None:
            await self._parts.repository.set_stage(media_id, stage)

        anyio.from_thread.run(record)

    async def _publish(
        self,
        media: Media,
        upload: UploadRequest,
        info: ObjectInfo,
        processed: Processed,
        written: list[str],
    ) -> Media:
        storage, probe = self._parts.storage, processed.probe
        rendition = None
        if processed.rendition is not None:
            made = processed.rendition
            rendition_key = uuid.uuid4().hex
            written.append(rendition_key)
            stored = await store_file(
                storage, rendition_key, made.path, content_type=made.media_type
            )
            rendition = Rendition(
                media_id=media.id,
                storage_key=rendition_key,
                media_type=made.media_type,
                width=made.size[0],
                height=made.size[1],
                size_bytes=stored.size,
                etag=stored.etag,
            )
        thumbnail = None
        if processed.thumbnail_path is not None and processed.thumbnail_size is not None:
            thumb_key = uuid.uuid4().hex
            written.append(thumb_key)
            thumb_info = await store_file(
                storage, thumb_key, processed.thumbnail_path, content_type="image/jpeg"
            )
            width, height = processed.thumbnail_size
            thumbnail = Thumbnail(
                media_id=media.id,
                storage_key=thumb_key,
                width=width,
                height=height,
                size_bytes=thumb_info.size,
                etag=thumb_info.etag,
            )
        hls = await self._store_ladder(processed.ladder, written)
        done = await self._parts.repository.mark_success(
            media.id,
            probe=probe,
            size_bytes=info.size,
            sha256=processed.sha256,
            etag=info.etag,
            storage_key=media.storage_key,
            thumbnail=thumbnail,
            rendition=rendition,
            thumbhash=processed.thumbhash,
            hls=hls,
        )
        # SUCCESS is committed: from here on nothing may fail the media or delete what it names.
        written.clear()
        try:
            await self._parts.repository.transition_upload(
                upload.id, {UploadState.PROCESSING}, UploadState.DONE
            )
        except MediaError as exc:  # the reaper only fails uploads whose media is IN_PROGRESS
            logger.warning("upload %s stays processing: %s", upload.id, exc.code)
        return done

    async def _store_ladder(
        self, files: tuple[LadderFile, ...], written: list[str]
    ) -> tuple[HlsFile, ...]:
        """Store every ladder file under a key of its own (each key is in `written` before its
        first byte, so a failure anywhere removes them all); the rows in the ladder's order."""
        stored: dict[str, HlsFile] = {}
        limiter = anyio.CapacityLimiter(LADDER_UPLOADS)

        async def store(file: LadderFile) -> None:
            async with limiter:
                key = uuid.uuid4().hex
                written.append(key)
                info = await store_file(
                    self._parts.storage, key, file.path, content_type=file.content_type
                )
                stored[file.name] = HlsFile(
                    name=file.name,
                    storage_key=key,
                    content_type=file.content_type,
                    size_bytes=info.size,
                    etag=info.etag,
                )

        try:
            async with anyio.create_task_group() as group:
                for file in files:
                    group.start_soon(store, file)
        except ExceptionGroup as failed:
            # The first failure decides, as if the files had been stored one after the other.
            first = failed.exceptions[0]
            while isinstance(first, ExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        return tuple(stored[file.name] for file in files)

    async def fail(
        self, media: Media, upload: UploadRequest | None, reason: str, keys: Iterable[str]
    ) -> Media:
        """Mark FAILED with a readable reason and delete every object written for it.

        The objects this attempt wrote go first: they are never anyone else's, and once FAILED
        shows, they are gone. The original goes only once the media is marked: when it is no
        longer in progress, something else ended it first (another run of its job, as a job
        looks stopped and runs again while its first run goes on, or a delete), that outcome
        stands and the original it names stays. An outage at the marking leaves the original
        for the job's next attempt."""
        repo, keys = self._parts.repository, tuple(keys)
        with anyio.CancelScope(shield=True):
            await self._quiet_delete(key for key in keys if key != media.storage_key)
            failed = await repo.mark_failed(media.id, reason)
            if failed is not None:
                if media.storage_key in keys:
                    await self._quiet_delete((media.storage_key,))
                if upload is not None:
                    await repo.transition_upload(upload.id, OPEN_UPLOAD_STATES, UploadState.FAILED)
                logger.info("media %s failed: %s", media.id, reason)
                return failed
            logger.info("media %s was ended by another run of its job or a delete", media.id)
            current = await repo.get_media(media.id, None)
        return current or media

    async def _quiet_delete(self, keys: Iterable[str]) -> None:
        """Delete what a failed attempt wrote; what cannot be deleted is left for the collector.

        An outage stops it at once: a ladder leaves hundreds of keys, and against a silent store
        each would wait out the storage timeout while the job (shielded here) holds on."""
        pending = list(keys)
        for index, key in enumerate(pending):
            try:
                await self._parts.storage.delete(key)
            except Unavailable:
                logger.warning(
                    "storage unavailable: %d object(s) of a failed upload left for the collector",
                    len(pending) - index,
                )
                return
            except MediaError:
                logger.warning(
                    "could not delete an object of a failed upload; left for the collector"
                )
