"""The Repository: every read and write of the data model, returning frozen models."""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from piccolo.engine.postgres import PostgresEngine

from media import jobstore
from media.clock import aware, utc, utc_now
from media.db import Database, guarded
from media.errors import Conflict, NotFound
from media.listener import CHANNEL, event_payload
from media.models import (
    OPEN_UPLOAD_STATES,
    Cursor,
    Envelope,
    HlsFile,
    JobRequest,
    Media,
    MediaEvent,
    MediaEventKind,
    MediaFilter,
    MediaMetadata,
    MediaPage,
    MediaStatus,
    MediaType,
    NewMedia,
    ObjectInfo,
    Owner,
    ProbeResult,
    ProcessingStage,
    Rendition,
    Thumbnail,
    UploadRequest,
    UploadState,
)
from media.rows import (
    ATTACHED_SQL,
    envelope_row,
    hls_file_row,
    metadata_values,
    new_binding_row,
    new_media_row,
    new_upload_row,
    rendition_row,
    success_values,
    thumbnail_row,
    to_envelope,
    to_hls_file,
    to_media,
    to_media_type,
    to_metadata,
    to_upload,
    with_attachments,
)
from media.share_store import ShareStore
from media.telemetry.metrics import UPLOADS

HLS_INSERT_BATCH = 200  # rows per INSERT: far below SQLite's bound on statement parameters
FINAL_UPLOAD_STATES = (UploadState.DONE, UploadState.FAILED, UploadState.EXPIRED)
REASON_LENGTH = 255


def _like_pattern(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _listing_sql(
    owner: Owner | None, where: MediaFilter, first: int, after: Cursor | None
) -> tuple[str, list[Any]]:
    """One keyset query, newest first; owners walk their binding index, admins the media index."""
    if owner is None:
        sql, order, id_col = "SELECT m.* FROM media m WHERE 1 = 1", "m.created_at", "m.id"
        args: list[Any] = []
    else:
        sql = (
            "SELECT m.* FROM user_media_binding b JOIN media m ON m.id = b.media"
            " WHERE b.owner_issuer = {} AND b.owner_subject = {}"
        )
        order, id_col, args = "b.created_at", "b.media", [owner.issuer, owner.subject]
    conditions: list[tuple[str, Any]] = []
    if where.kind is not None:
        conditions.append(("m.kind = {}", where.kind.value))
    if where.status is not None:
        conditions.append(("m.status = {}", where.status.value))
    if where.date_from is not None:
        conditions.append(("m.media_date >= {}", utc(where.date_from)))
    if where.date_to is not None:
        conditions.append(("m.media_date < {}", utc(where.date_to)))
    if where.name_contains:
        conditions.append(("m.name_folded LIKE {} ESCAPE '\\'", _like_pattern(where.name_contains)))
    for condition, value in conditions:
        sql += f" AND {condition}"
        args.append(value)
    if after is not None:
        # The cursor names the media by its public id; ties on created_at are broken by the
        # internal key, which the index already orders (a deleted cursor media skips its ties).
        key = "(SELECT id FROM media WHERE public_id = {})"
        sql += f" AND ({order} < {{}} OR ({order} = {{}} AND {id_col} < {key}))"
        args += [utc(after.created_at), utc(after.created_at), after.id]
    sql += f" ORDER BY {order} DESC, {id_col} DESC LIMIT {{}}"
    return sql, [*args, first + 1]


class Repository:
    """Reads and writes of the data model; driver errors surface as MediaErrors."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime] = utc_now,
        events: Callable[[MediaEvent], None] | None = None,
    ) -> None:
        self._db = database
        self._t = database.tables
        self._clock = clock
        self._events = events
        self._postgres = isinstance(database.engine, PostgresEngine)
        self.shares = ShareStore(
            database,
            clock=clock,
            media_models=self._media_models,
            announce=self._announce_event,
            announced=self._announced_event,
        )

    async def _announce(self, kind: MediaEventKind, media_id: str) -> None:
        await self._announce_event(MediaEvent(kind=kind.value, media_id=media_id))

    def _announced(self, kind: MediaEventKind, media_id: str) -> None:
        self._announced_event(MediaEvent(kind=kind.value, media_id=media_id))

    async def _announce_event(self, event: MediaEvent) -> None:
        """Inside the write's transaction: NOTIFY every process (PostgreSQL sends it at commit,
        and never for a rollback). One per state change: never heartbeats or progress."""
        if self._postgres:
            await self._t.media.raw("SELECT pg_notify({}, {})", CHANNEL, event_payload(event))

    def _announced_event(self, event: MediaEvent) -> None:
        """After the commit on SQLite: the only process there is hears it directly."""
        if not self._postgres and self._events is not None:
            self._events(event)

    def _now(self) -> datetime:
        return aware(self._clock())

    @guarded
    async def ping(self) -> None:
        """Readiness: raise Unavailable when the database cannot answer."""
        await self._db.ping()

    async def _media_models(self, rows: list[dict[str, Any]]) -> list[Media]:
        """Models of media rows with what hangs off them, in one more query whatever the count."""
        if not rows:
            return []
        keys = [row["id"] for row in rows]
        placeholders = ", ".join("{}" for _ in keys)
        found = await self._t.metadata.raw(
            f"{ATTACHED_SQL} WHERE d.media IN ({placeholders})", *keys
        )
        attached = {row["media"]: row for row in found}
        return [with_attachments(row, attached.get(row["id"])) for row in rows]

    async def _upload_models(self, rows: list[dict[str, Any]]) -> list[UploadRequest]:
        """Upload models with the public id of their media (one query for all rows)."""
        if not rows:
            return []
        m = self._t.media
        keys = sorted({row["media"] for row in rows})
        found = await m.select(m.id, m.public_id).where(m.id.is_in(keys))
        public = {row["id"]: row["public_id"] for row in found}
        # A media deleted meanwhile took its uploads along; "" names no media.
        return [to_upload(row, public.get(row["media"], "")) for row in rows]

    async def _one_media(self, rows: list[dict[str, Any]]) -> Media | None:
        return (await self._media_models(rows))[0] if rows else None

    @guarded
    async def media_type(self, mime_type: str) -> MediaType | None:
        """The allowed type with this MIME type (first by extension), or None."""
        t = self._t.media_type
        rows = await t.select().where(t.mime_type == mime_type).order_by(t.extension).limit(1)
        return to_media_type(rows[0]) if rows else None

    @guarded
    async def media_types(self) -> tuple[MediaType, ...]:
        """Every allowed type, by extension."""
        t = self._t.media_type
        return tuple(to_media_type(row) for row in await t.select().order_by(t.extension))

    @guarded
    async def create_media(self, owner: Owner, new: NewMedia) -> tuple[Media, UploadRequest]:
        """Write media, binding, metadata and upload request (checked by the service) in one
        transaction."""
        t, now = self._t, self._now()
        async with self._db.transaction():
            media = new_media_row(t.media, new, now)
            row = (await t.media.insert(media).returning(*t.media.all_columns()))[0]
            await t.binding.insert(new_binding_row(t.binding, row["id"], owner, now))
            await t.metadata.insert(
                t.metadata(media=row["id"], original_file_name=new.original_file_name)
            )
            upload = new_upload_row(t.upload, row["id"], owner, new, now)
            upload_row = (await t.upload.insert(upload).returning(*t.upload.all_columns()))[0]
        details = MediaMetadata(
            media_id=row["public_id"], original_file_name=new.original_file_name
        )
        return to_media(row, details=details, owner=owner), to_upload(upload_row, row["public_id"])

    @guarded
    async def count_open_uploads(self, owner: Owner) -> int:
        """How many of the owner's uploads are pending, receiving or processing."""
        u = self._t.upload
        count: int = await u.count().where(
            (u.owner_issuer == owner.issuer)
            & (u.owner_subject == owner.subject)
            & u.state.is_in(sorted(state.value for state in OPEN_UPLOAD_STATES))
        )
        return count

    @guarded
    async def get_media(self, media_id: str, owner: Owner | None) -> Media | None:
        """One media with its thumbnail; None when absent or not the owner's (None = admin)."""
        m, b = self._t.media, self._t.binding
        query = m.select().where(m.public_id == media_id)
        if owner is not None:
            mine = b.select(b.media).where(
                (b.owner_issuer == owner.issuer) & (b.owner_subject == owner.subject)
            )
            query = query.where(m.id.is_in(mine))
        return await self._one_media(await query)

    @guarded
    async def list_media(
        self, owner: Owner | None, filter: MediaFilter, first: int, after: Cursor | None
    ) -> MediaPage:
        """One page newest first by (created_at, id); two queries at most (`first` checked by
        the service)."""
        sql, args = _listing_sql(owner, filter, first, after)
        rows = await self._t.media.raw(sql, *args)
        items = await self._media_models(rows[:first])
        return MediaPage(items=tuple(items), has_next_page=len(rows) > first)

    @guarded
    async def get_upload(self, upload_id: UUID) -> UploadRequest | None:
        """One upload request, or None."""
        u = self._t.upload
        rows = await u.select().where(u.id == upload_id)
        return (await self._upload_models(rows))[0] if rows else None

    @guarded
    async def transition_upload(
        self,
        upload_id: UUID,
        from_states: Collection[UploadState],
        to: UploadState,
        *,
        temp_key: str | None = None,
        now: datetime | None = None,
    ) -> UploadRequest | None:
        """Move the upload to `to` in one conditional UPDATE; None when it was in no from-state."""
        if not from_states:
            return None
        u = self._t.upload
        values: dict[Any, Any] = {u.state: to.value}
        if temp_key is not None:
            values[u.temp_key] = temp_key
        if to in FINAL_UPLOAD_STATES:
            values[u.completed_at] = utc(now) or self._now()
        rows = await (
            u.update(values)
            .where((u.id == upload_id) & u.state.is_in([state.value for state in from_states]))
            .returning(*u.all_columns())
        )
        if rows and to in FINAL_UPLOAD_STATES:
            UPLOADS.labels(to.value).inc()  # once per upload: the UPDATE is conditional
        return (await self._upload_models(rows))[0] if rows else None

    @guarded
    async def queue_processing(
        self, upload_id: UUID, media_id: str, stored: ObjectInfo, job: JobRequest | None
    ) -> Media | None:
        """RECEIVING → PROCESSING with the stored original's details, and the job that processes
        it, in one transaction; None when the upload was no longer receiving."""
        t, now = self._t, self._now()
        async with self._db.transaction():
            moved = await (
                t.upload.update({t.upload.state: UploadState.PROCESSING.value})
                .where((t.upload.id == upload_id) & (t.upload.state == UploadState.RECEIVING.value))
                .returning(t.upload.id)
            )
            if not moved:
                return None
            # The job reads what it needs from the row: size, etag and the hash taken while the
            # bytes arrived (they are never read again just to hash them).
            values: dict[Any, Any] = {
                t.media.size_bytes: stored.size,
                t.media.etag: stored.etag,
                t.media.sha256: stored.sha256 or "",
                t.media.updated_at: now,
            }
            rows = await (
                t.media.update(values)
                .where(
                    (t.media.public_id == media_id)
                    & (t.media.status == MediaStatus.IN_PROGRESS.value)
                )
                .returning(*t.media.all_columns())
            )
            if job is not None:
                await jobstore.defer(self._db, job)
        return to_media(rows[0]) if rows else None

    @guarded
    async def uploads_in_state(self, state: UploadState, limit: int = 1000) -> tuple[UUID, ...]:
        """Ids of uploads in `state`, oldest first."""
        u = self._t.upload
        rows = await (
            u.select(u.id).where(u.state == state.value).order_by(u.created_at).limit(limit)
        )
        return tuple(UUID(str(row["id"])) for row in rows)

    @guarded
    async def mark_success(
        self,
        media_id: str,
        *,
        probe: ProbeResult,
        size_bytes: int,
        sha256: str,
        etag: str,
        storage_key: str,
        thumbnail: Thumbnail | None,
        rendition: Rendition | None = None,
        thumbhash: str | None = None,
        hls: tuple[HlsFile, ...] = (),
    ) -> Media:
        """IN_PROGRESS → SUCCESS with every probed detail, rendition, thumbnail and HLS ladder
        file, at once."""
        t, now = self._t, self._now()
        async with self._db.transaction():
            values = success_values(t.media, probe, thumbnail is not None, now)
            values |= {
                t.media.size_bytes: size_bytes,
                t.media.sha256: sha256,
                t.media.etag: etag,
                t.media.storage_key: storage_key,
                t.media.thumbhash: thumbhash,
            }
            # One conditional statement (docs/security.md §2.1): a concurrent mark_failed or delete
            # wins or loses as a whole, never half.
            in_progress = (t.media.public_id == media_id) & (
                t.media.status == MediaStatus.IN_PROGRESS.value
            )
            rows = await t.media.update(values).where(in_progress).returning(*t.media.all_columns())
            if not rows:
                current = await t.media.select(t.media.status).where(t.media.public_id == media_id)
                if not current:
                    raise NotFound(media_id=media_id)
                raise Conflict(media_id=media_id, status=current[0]["status"])
            key = rows[0]["id"]
            if rows[0]["media_date"] is None and probe.captured_at is not None:
                rows = await (
                    t.media.update({t.media.media_date: utc(probe.captured_at)})
                    .where(t.media.id == key)
                    .returning(*t.media.all_columns())
                )
            await t.thumbnail.delete().where(t.thumbnail.media == key)
            if thumbnail is not None:
                await t.thumbnail.insert(thumbnail_row(t.thumbnail, key, thumbnail))
            await t.rendition.delete().where(t.rendition.media == key)
            if rendition is not None:
                await t.rendition.insert(rendition_row(t.rendition, key, rendition))
            await t.hls_file.delete().where(t.hls_file.media == key)
            for start in range(0, len(hls), HLS_INSERT_BATCH):
                batch = hls[start : start + HLS_INSERT_BATCH]
                await t.hls_file.insert(*(hls_file_row(t.hls_file, key, f) for f in batch))
            await t.metadata.update(metadata_values(t.metadata, probe)).where(
                t.metadata.media == key
            )
            await self._announce(MediaEventKind.STATUS, media_id)
        self._announced(MediaEventKind.STATUS, media_id)
        done = await self._one_media(rows)
        assert done is not None
        return done

    @guarded
    async def hls_file(self, media_id: str, name: str) -> HlsFile | None:
        """The file of a media's HLS ladder with exactly this name, or None (index
        hls_file_media_name: one row at most)."""
        h = self._t.hls_file
        rows = await h.select(*h.all_columns()).where(
            (h.media.public_id == media_id) & (h.name == name)
        )
        return to_hls_file(rows[0]) if rows else None

    @guarded
    async def set_stage(self, media_id: str, stage: ProcessingStage) -> bool:
        """Record the processing step of an IN_PROGRESS media; False when it is not in progress."""
        m = self._t.media
        rows = await (
            m.update({m.processing_stage: stage.value, m.updated_at: self._now()})
            .where((m.public_id == media_id) & (m.status == MediaStatus.IN_PROGRESS.value))
            .returning(m.id)
        )
        return bool(rows)

    @guarded
    async def mark_failed(self, media_id: str, reason: str) -> Media | None:
        """IN_PROGRESS → FAILED with a reason; None when no IN_PROGRESS media has this id."""
        m = self._t.media
        values: dict[Any, Any] = {
            m.status: MediaStatus.FAILED.value,
            m.failure_reason: reason[:REASON_LENGTH],
            m.updated_at: self._now(),
        }
        async with self._db.transaction():
            rows = await (
                m.update(values)
                .where((m.public_id == media_id) & (m.status == MediaStatus.IN_PROGRESS.value))
                .returning(*m.all_columns())
            )
            if rows:
                await self._announce(MediaEventKind.STATUS, media_id)
        if rows:
            self._announced(MediaEventKind.STATUS, media_id)
        return await self._one_media(rows)

    @guarded
    async def bump_generation(self, media_id: str) -> Media | None:
        """Add one to url_generation, revoking every URL issued so far; None when absent."""
        m = self._t.media
        async with self._db.transaction():
            rows = await (
                m.update({m.url_generation: m.url_generation + 1, m.updated_at: self._now()})
                .where(m.public_id == media_id)
                .returning(*m.all_columns())
            )
            if rows:
                await self._announce(MediaEventKind.REVOKED, media_id)
        if rows:
            self._announced(MediaEventKind.REVOKED, media_id)
        return await self._one_media(rows)

    @guarded
    async def delete_media(self, media_id: str) -> tuple[str, ...] | None:
        """Delete the media and its rows; return the storage keys to remove, or None when absent."""
        t = self._t
        async with self._db.transaction():
            rows = await t.media.select(t.media.id, t.media.storage_key).where(
                t.media.public_id == media_id
            )
            if not rows:
                return None
            key = rows[0]["id"]
            thumbs = await t.thumbnail.select(t.thumbnail.storage_key).where(
                t.thumbnail.media == key
            )
            thumbs += await t.rendition.select(t.rendition.storage_key).where(
                t.rendition.media == key
            )
            thumbs += await t.hls_file.select(t.hls_file.storage_key).where(t.hls_file.media == key)
            temps = await t.upload.select(t.upload.temp_key).where(t.upload.media == key)
            await t.media.delete().where(t.media.id == key)
            await self._announce(MediaEventKind.DELETED, media_id)
        self._announced(MediaEventKind.DELETED, media_id)
        keys = [rows[0]["storage_key"], *(r["storage_key"] for r in thumbs)]
        keys += [r["temp_key"] for r in temps if r["temp_key"]]
        return tuple(dict.fromkeys(keys))

    @guarded
    async def referenced_keys(self, keys: Collection[str]) -> frozenset[str]:
        """Those of `keys` that a media, thumbnail, rendition or upload row still names."""
        if not keys:
            return frozenset()
        t = self._t
        wanted = list(keys)
        found: set[str] = set()
        for table, column in (
            (t.media, t.media.storage_key),
            (t.thumbnail, t.thumbnail.storage_key),
            (t.rendition, t.rendition.storage_key),
            (t.hls_file, t.hls_file.storage_key),
            (t.upload, t.upload.temp_key),
        ):
            rows = await table.select(column).where(column.is_in(wanted))
            found.update(row[column._meta.name] for row in rows)
        return frozenset(found)

    @guarded
    async def expired_uploads(
        self,
        now: datetime,
        limit: int = 100,
        states: Collection[UploadState] = OPEN_UPLOAD_STATES,
    ) -> tuple[UploadRequest, ...]:
        """Uploads in `states` (default: open) whose expires_at is before `now`, oldest first."""
        u = self._t.upload
        rows = await (
            u.select()
            .where(
                u.state.is_in(sorted(state.value for state in states)) & (u.expires_at < aware(now))
            )
            .order_by(u.expires_at)
            .limit(limit)
        )
        return tuple(await self._upload_models(rows))

    @guarded
    async def open_multipart_keys(self) -> frozenset[str]:
        """Storage keys of multipart uploads that may still receive parts or be assembled."""
        u = self._t.upload
        rows = await u.select(u.temp_key).where(
            u.multipart_id.is_not_null()
            & u.state.is_in(sorted(state.value for state in OPEN_UPLOAD_STATES))
        )
        return frozenset(row["temp_key"] for row in rows if row["temp_key"])

    @guarded
    async def metadata(self, media_id: str) -> MediaMetadata | None:
        """The details of the original, or None when the media does not exist."""
        md = self._t.metadata
        rows = await md.select().where(md.media.public_id == media_id)
        return to_metadata(rows[0], media_id) if rows else None

    # --- envelopes of encrypted objects (the EnvelopeStore of media.storage.keyring) -----------

    @guarded
    async def get_envelope(self, storage_key: str) -> Envelope | None:
        """The envelope of an object, or None when it is stored in plaintext (or absent)."""
        e = self._t.envelope
        rows = await e.select().where(e.storage_key == storage_key)
        return to_envelope(rows[0]) if rows else None

    @guarded
    async def put_envelope(self, envelope: Envelope) -> None:
        """Insert or replace the envelope of an object."""
        e = self._t.envelope
        async with self._db.transaction():
            await e.delete().where(e.storage_key == envelope.storage_key)
            await e.insert(envelope_row(e, envelope, self._now()))

    @guarded
    async def delete_envelope(self, storage_key: str) -> None:
        """Remove an envelope; absent is fine."""
        e = self._t.envelope
        await e.delete().where(e.storage_key == storage_key)

    @guarded
    async def envelope_keys_before(
        self, cutoff: datetime, after: str, limit: int
    ) -> tuple[str, ...]:
        """Storage keys of envelopes created before `cutoff`, above `after`, in key order."""
        e = self._t.envelope
        rows = await (
            e.select(e.storage_key)
            .where((e.created_at < aware(cutoff)) & (e.storage_key > after))
            .order_by(e.storage_key)
            .limit(limit)
        )
        return tuple(row["storage_key"] for row in rows)

    @guarded
    async def master_key_ids(self) -> frozenset[str]:
        """Every master key id some envelope still names."""
        e = self._t.envelope
        rows = await e.select(e.master_key_id).distinct()
        return frozenset(row["master_key_id"] for row in rows)

    @guarded
    async def envelopes_under(self, master_key_id: str, limit: int) -> tuple[Envelope, ...]:
        """Up to `limit` envelopes whose data key is wrapped under `master_key_id`."""
        e = self._t.envelope
        rows = await e.select().where(e.master_key_id == master_key_id).limit(limit)
        return tuple(to_envelope(row) for row in rows)

    @guarded
    async def envelopes_to_rewrap(
        self, newest: str, after: str, limit: int
    ) -> tuple[Envelope, ...]:
        """Up to `limit` envelopes not under `newest`, storage keys above `after`, in key order."""
        e = self._t.envelope
        rows = await (
            e.select()
            .where((e.master_key_id != newest) & (e.storage_key > after))
            .order_by(e.storage_key)
            .limit(limit)
        )
        return tuple(to_envelope(row) for row in rows)

    @guarded
    async def rewrap_envelope(self, old: Envelope, new: Envelope) -> bool:
        """Swap the wrapped key only if the row still holds `old`'s (compare-and-set)."""
        e = self._t.envelope
        rows = await (
            e.update({e.master_key_id: new.master_key_id, e.wrapped_key: _b64(new.wrapped_key)})
            .where(
                (e.storage_key == old.storage_key)
                & (e.master_key_id == old.master_key_id)
                & (e.wrapped_key == _b64(old.wrapped_key))
            )
            .returning(e.storage_key)
        )
        return bool(rows)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
