"""Repository contract, run on a fresh migrated SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from media.db import Database, migrate, open_database
from media.errors import Conflict, NotFound, Unavailable
from media.ids import is_media_id, new_media_id
from media.models import (
    ACCEPTED_TYPES,
    Cursor,
    Media,
    MediaFilter,
    MediaKind,
    MediaStatus,
    MediaType,
    NewMedia,
    Owner,
    ProbeResult,
    Thumbnail,
    UploadRequest,
    UploadState,
)
from media.repository import Repository
from tests.support import free_port
from tests.support.clock import ManualClock
from tests.support.postgres import TcpProxy, create_database, database_settings, drop_database

ALICE = Owner(subject="alice", issuer="https://issuer.test")
BOB = Owner(subject="bob", issuer="https://issuer.test")
ALICE_ELSEWHERE = Owner(subject="alice", issuer="https://other.test")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MP4 = MediaType("mp4", "video/mp4", MediaKind.VIDEO)
PNG = MediaType("png", "image/png", MediaKind.IMAGE)
BIG = 5 * 1024**3  # over 2**32: sizes must be 64-bit


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def repo(database: Database, clock: ManualClock) -> Repository:
    return Repository(database, clock=clock)


def new_media(
    name: str = "Holiday.mp4",
    media_type: MediaType = MP4,
    size: int = 1000,
    media_date: datetime | None = None,
) -> NewMedia:
    return NewMedia(
        name=name,
        media_type=media_type,
        size_bytes=size,
        original_file_name=name,
        media_date=media_date,
        storage_key=str(uuid.uuid4()),
        upload_id=uuid.uuid4(),
        upload_expires_at=T0 + timedelta(hours=1),
    )


def probe(**overrides: object) -> ProbeResult:
    values: dict[str, object] = {
        "mime_type": "video/mp4",
        "kind": MediaKind.VIDEO,
        "width": 1920,
        "height": 1080,
        "duration_seconds": 12.5,
        "captured_at": datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC),
        "container": "mov,mp4",
        "video_codec": "h264",
        "audio_codec": "aac",
        "bit_rate": 4_000_000,
    }
    values.update(overrides)
    return ProbeResult(**values)  # type: ignore[arg-type]


async def complete(repo: Repository, media: Media, upload: UploadRequest, thumb: bool) -> Media:
    """The upload path of the service: claim, process, publish."""
    assert await repo.transition_upload(upload.id, {UploadState.PENDING}, UploadState.RECEIVING)
    moved = await repo.transition_upload(upload.id, {UploadState.RECEIVING}, UploadState.PROCESSING)
    assert moved is not None
    thumbnail = Thumbnail(media.id, f"thumb-{media.storage_key}", 320, 180, 4096, '"t"')
    done = await repo.mark_success(
        media.id,
        probe=probe(),
        size_bytes=BIG,
        sha256="ab" * 32,
        etag='"e"',
        storage_key=media.storage_key,
        thumbnail=thumbnail if thumb else None,
    )
    assert await repo.transition_upload(upload.id, {UploadState.PROCESSING}, UploadState.DONE)
    return done


def assert_aware(*values: datetime | None) -> None:
    for value in values:
        assert value is not None and value.utcoffset() == timedelta(0), value


async def test_media_types_are_seeded(repo: Repository) -> None:
    types = await repo.media_types()
    assert {(t.extension, t.mime_type, t.kind) for t in types} == {
        ("mp4", "video/mp4", MediaKind.VIDEO),
        ("webm", "video/webm", MediaKind.VIDEO),
        ("png", "image/png", MediaKind.IMAGE),
        ("jpeg", "image/jpeg", MediaKind.IMAGE),
        ("jpg", "image/jpeg", MediaKind.IMAGE),
        ("mov", "video/quicktime", MediaKind.VIDEO),
        ("mkv", "video/x-matroska", MediaKind.VIDEO),
        ("webp", "image/webp", MediaKind.IMAGE),
        ("gif", "image/gif", MediaKind.IMAGE),
        ("heic", "image/heic", MediaKind.IMAGE),
        ("heif", "image/heif", MediaKind.IMAGE),
        ("avif", "image/avif", MediaKind.IMAGE),
    }
    assert await repo.media_type("image/jpeg") == MediaType("jpeg", "image/jpeg", MediaKind.IMAGE)
    assert await repo.media_type("image/svg+xml") is None


async def test_create_media_writes_every_row(repo: Repository) -> None:
    spec = new_media(media_date=datetime(2023, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    media, upload = await repo.create_media(ALICE, spec)
    assert media.status is MediaStatus.IN_PROGRESS
    assert (media.name, media.media_type, media.kind) == ("Holiday.mp4", "video/mp4", "video")
    assert (media.storage_key, media.size_bytes, media.url_generation) == (
        spec.storage_key,
        1000,
        0,
    )
    assert media.media_date == datetime(2023, 7, 1, 12, 0, tzinfo=UTC)
    assert media.created_at == T0 and media.has_thumbnail is False and media.thumbnail is None
    assert_aware(media.created_at, media.updated_at, media.media_date)
    assert upload.id == spec.upload_id and upload.state is UploadState.PENDING
    assert (upload.media_id, upload.owner, upload.declared_size) == (media.id, ALICE, 1000)
    assert (upload.declared_type, upload.expires_at, upload.temp_key) == (
        "video/mp4",
        spec.upload_expires_at,
        None,
    )
    assert_aware(upload.created_at, upload.expires_at)
    assert await repo.get_upload(spec.upload_id) == upload
    assert await repo.get_media(media.id, ALICE) == media
    assert await repo.get_media(media.id, BOB) is None  # bound to its owner only
    meta = await repo.metadata(media.id)
    assert meta is not None and meta.original_file_name == "Holiday.mp4" and meta.container is None
    assert await repo.count_open_uploads(ALICE) == 1
    assert await repo.count_open_uploads(BOB) == 0


ABSENT = new_media_id()


async def test_absent_rows_read_as_none(repo: Repository) -> None:
    assert await repo.get_media(ABSENT, None) is None
    assert await repo.get_upload(uuid.uuid4()) is None
    assert await repo.metadata(ABSENT) is None
    assert await repo.bump_generation(ABSENT) is None
    assert await repo.mark_failed(ABSENT, "x") is None
    assert await repo.delete_media(ABSENT) is None


async def test_ownership_isolation(repo: Repository) -> None:
    mine, _ = await repo.create_media(ALICE, new_media("a.mp4"))
    theirs, _ = await repo.create_media(BOB, new_media("b.mp4"))
    assert await repo.get_media(mine.id, ALICE) is not None
    assert await repo.get_media(theirs.id, ALICE) is None
    assert await repo.get_media(mine.id, ALICE_ELSEWHERE) is None
    assert await repo.get_media(theirs.id, None) is not None
    assert [m.id for m in (await repo.list_media(ALICE, MediaFilter(), 10, None)).items] == [
        mine.id
    ]
    assert [m.id for m in (await repo.list_media(BOB, MediaFilter(), 10, None)).items] == [
        theirs.id
    ]
    assert (await repo.list_media(ALICE_ELSEWHERE, MediaFilter(), 10, None)).items == ()
    assert {m.id for m in (await repo.list_media(None, MediaFilter(), 10, None)).items} == {
        mine.id,
        theirs.id,
    }


async def test_the_media_type_table_holds_the_accepted_types(repo: Repository) -> None:
    stored = {(media_type.mime_type, media_type.kind) for media_type in await repo.media_types()}
    assert stored == {(accepted.mime_type, accepted.kind) for accepted in ACCEPTED_TYPES}


async def test_name_of_255_characters_is_accepted(repo: Repository) -> None:
    media, _ = await repo.create_media(ALICE, new_media("é" * 255))
    assert media.name == "é" * 255


async def test_duplicate_upload_id_is_a_conflict(repo: Repository) -> None:
    spec = new_media()
    await repo.create_media(ALICE, spec)
    again = dataclasses.replace(spec, storage_key="other")
    with pytest.raises(Conflict):
        await repo.create_media(ALICE, again)
    assert len((await repo.list_media(None, MediaFilter(), 10, None)).items) == 1


async def test_transition_upload_is_conditional(repo: Repository, clock: ManualClock) -> None:
    _, upload = await repo.create_media(ALICE, new_media())
    claimed = await repo.transition_upload(
        upload.id, {UploadState.PENDING}, UploadState.RECEIVING, temp_key="tmp/1"
    )
    assert claimed is not None and claimed.state is UploadState.RECEIVING
    assert claimed.temp_key == "tmp/1" and claimed.completed_at is None
    assert (
        await repo.transition_upload(upload.id, {UploadState.PENDING}, UploadState.RECEIVING)
        is None
    )
    assert await repo.transition_upload(upload.id, (), UploadState.FAILED) is None
    assert (
        await repo.transition_upload(uuid.uuid4(), {UploadState.PENDING}, UploadState.DONE) is None
    )
    later = T0 + timedelta(minutes=3)
    failed = await repo.transition_upload(
        upload.id, {UploadState.RECEIVING}, UploadState.FAILED, now=later
    )
    assert failed is not None and failed.completed_at == later and failed.temp_key == "tmp/1"
    assert await repo.count_open_uploads(ALICE) == 0


async def test_two_concurrent_claims_one_wins(repo: Repository) -> None:
    for _ in range(5):
        _, upload = await repo.create_media(ALICE, new_media())
        results = await asyncio.gather(
            *(
                repo.transition_upload(upload.id, {UploadState.PENDING}, UploadState.RECEIVING)
                for _ in range(2)
            )
        )
        assert sum(result is not None for result in results) == 1


async def test_mark_success_records_everything(repo: Repository, clock: ManualClock) -> None:
    media, upload = await repo.create_media(ALICE, new_media())
    clock.now = T0 + timedelta(seconds=30)
    done = await complete(repo, media, upload, thumb=True)
    assert done.status is MediaStatus.SUCCESS and done.updated_at == T0 + timedelta(seconds=30)
    assert (done.width, done.height, done.duration_seconds) == (1920, 1080, 12.5)
    assert (done.size_bytes, done.sha256, done.etag) == (BIG, "ab" * 32, '"e"')
    assert done.media_date == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert done.has_thumbnail and done.thumbnail is not None
    again = await repo.get_media(media.id, ALICE)
    assert again == done
    assert again.thumbnail == Thumbnail(
        media.id, f"thumb-{media.storage_key}", 320, 180, 4096, '"t"'
    )
    meta = await repo.metadata(media.id)
    assert meta is not None
    assert (meta.container, meta.video_codec, meta.audio_codec, meta.bit_rate) == (
        "mov,mp4",
        "h264",
        "aac",
        4_000_000,
    )
    assert meta.file_date == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert_aware(meta.file_date)
    assert (await repo.get_upload(upload.id)).state is UploadState.DONE  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        await repo.mark_success(
            media.id,
            probe=probe(),
            size_bytes=1,
            sha256="",
            etag="",
            storage_key="k",
            thumbnail=None,
        )
    with pytest.raises(NotFound):
        await repo.mark_success(
            ABSENT, probe=probe(), size_bytes=1, sha256="", etag="", storage_key="k", thumbnail=None
        )


async def test_mark_success_keeps_the_declared_media_date(repo: Repository) -> None:
    declared = datetime(2011, 11, 11, tzinfo=UTC)
    media, upload = await repo.create_media(ALICE, new_media(media_date=declared))
    done = await complete(repo, media, upload, thumb=False)
    assert done.media_date == declared and not done.has_thumbnail and done.thumbnail is None


async def test_mark_failed_moves_only_in_progress(repo: Repository) -> None:
    media, _ = await repo.create_media(ALICE, new_media())
    failed = await repo.mark_failed(media.id, "not a video " + "x" * 400)
    assert failed is not None and failed.status is MediaStatus.FAILED
    assert failed.failure_reason is not None and len(failed.failure_reason) == 255
    assert await repo.mark_failed(media.id, "again") is None
    ok, ok_upload = await repo.create_media(ALICE, new_media())
    await complete(repo, ok, ok_upload, thumb=False)
    assert await repo.mark_failed(ok.id, "late") is None
    assert (await repo.get_media(ok.id, None)).status is MediaStatus.SUCCESS  # type: ignore[union-attr]


async def test_bump_generation(repo: Repository) -> None:
    media, _ = await repo.create_media(ALICE, new_media())
    assert (await repo.bump_generation(media.id)).url_generation == 1  # type: ignore[union-attr]
    assert (await repo.bump_generation(media.id)).url_generation == 2  # type: ignore[union-attr]
    assert (await repo.get_media(media.id, ALICE)).url_generation == 2  # type: ignore[union-attr]


async def finished(
    repo: Repository, *, temp: str, final: str, thumb: str
) -> tuple[Media, UploadRequest]:
    """A media through the whole upload, naming the three kinds of storage key."""
    media, upload = await repo.create_media(ALICE, new_media())
    await repo.transition_upload(
        upload.id, {UploadState.PENDING}, UploadState.RECEIVING, temp_key=temp
    )
    await repo.transition_upload(upload.id, {UploadState.RECEIVING}, UploadState.PROCESSING)
    await repo.mark_success(
        media.id,
        probe=probe(),
        size_bytes=10,
        sha256="0" * 64,
        etag='"e"',
        storage_key=final,
        thumbnail=Thumbnail(media.id, thumb, 1, 1, 1, '"t"'),
    )
    return media, upload


async def test_delete_cascades_and_returns_every_key(repo: Repository) -> None:
    media, upload = await finished(repo, temp="tmp/x", final="final", thumb="thumb")
    keys = await repo.delete_media(media.id)
    assert keys is not None and set(keys) == {"final", "thumb", "tmp/x"}
    assert await repo.get_media(media.id, None) is None
    assert await repo.get_upload(upload.id) is None
    assert await repo.metadata(media.id) is None
    assert await repo.get_media(media.id, ALICE) is None
    assert await repo.delete_media(media.id) is None
    newer, _ = await repo.create_media(ALICE, new_media())
    assert newer.id != media.id and is_media_id(newer.id)


async def test_referenced_keys_names_every_kind_of_key(repo: Repository) -> None:
    media, _ = await finished(repo, temp="temp-key", final="final-key", thumb="thumb-key")
    asked = ["final-key", "thumb-key", "temp-key", "orphan-key"]
    assert await repo.referenced_keys(asked) == {"final-key", "thumb-key", "temp-key"}
    assert await repo.referenced_keys([]) == frozenset()
    await repo.delete_media(media.id)
    assert await repo.referenced_keys(asked) == frozenset()


async def test_expired_uploads(repo: Repository) -> None:
    uploads = []
    for minutes in (10, 20, 30, 40):
        spec = dataclasses.replace(new_media(), upload_expires_at=T0 + timedelta(minutes=minutes))
        uploads.append((await repo.create_media(ALICE, spec))[1])
    await repo.transition_upload(uploads[0].id, {UploadState.PENDING}, UploadState.EXPIRED)
    await repo.transition_upload(uploads[1].id, {UploadState.PENDING}, UploadState.PROCESSING)
    now = T0 + timedelta(minutes=35)
    assert [u.id for u in await repo.expired_uploads(now)] == [uploads[1].id, uploads[2].id]
    assert [u.id for u in await repo.expired_uploads(now, limit=1)] == [uploads[1].id]
    assert await repo.expired_uploads(T0 + timedelta(minutes=20)) == ()


async def test_pagination_walks_every_item_once(repo: Repository, clock: ManualClock) -> None:
    created = []
    for index in range(23):
        clock.now = T0 + timedelta(seconds=index // 3)  # groups of three share created_at
        media, _ = await repo.create_media(ALICE if index % 4 else BOB, new_media(f"m{index}.mp4"))
        created.append(media)
    for owner in (ALICE, None):
        # Ties on created_at come newest-created first (the internal key breaks them).
        newest_first = sorted(enumerate(created), key=lambda p: (p[1].created_at, p[0]))[::-1]
        expected = [
            m.id
            for _, m in newest_first
            if owner is None or m.id not in {c.id for i, c in enumerate(created) if i % 4 == 0}
        ]
        for size in (1, 5, len(expected), 100):
            seen, cursor, pages = [], None, 0
            while True:
                page = await repo.list_media(owner, MediaFilter(), size, cursor)
                pages += 1
                seen += [m.id for m in page.items]
                assert page.has_next_page == (len(seen) < len(expected))
                if not page.has_next_page:
                    break
                cursor = Cursor(page.items[-1].created_at, page.items[-1].id)
            assert seen == expected
            assert pages == max(1, -(-len(expected) // size))
    empty = await repo.list_media(ALICE, MediaFilter(), 0, None)
    assert empty.items == () and empty.has_next_page


async def test_list_includes_thumbnails(repo: Repository) -> None:
    plain, _ = await repo.create_media(ALICE, new_media())
    media, upload = await repo.create_media(ALICE, new_media())
    await complete(repo, media, upload, thumb=True)
    page = await repo.list_media(ALICE, MediaFilter(), 10, None)
    by_id = {m.id: m for m in page.items}
    assert by_id[media.id].thumbnail is not None and by_id[plain.id].thumbnail is None


async def test_filters(repo: Repository, clock: ManualClock) -> None:
    clock.step = timedelta(seconds=1)
    day = lambda d: datetime(2024, 1, d, tzinfo=UTC)  # noqa: E731
    video, up = await repo.create_media(ALICE, new_media("Été à Paris.mp4", media_date=day(1)))
    image, _ = await repo.create_media(ALICE, new_media("50%_off.png", PNG, media_date=day(2)))
    decoy, _ = await repo.create_media(ALICE, new_media("50xx_off.png", PNG, media_date=day(3)))
    undated, _ = await repo.create_media(ALICE, new_media("summer.mp4"))
    await complete(repo, video, up, thumb=False)  # probe keeps the declared date

    async def ids(where: MediaFilter) -> set[int]:
        return {m.id for m in (await repo.list_media(ALICE, where, 50, None)).items}

    assert await ids(MediaFilter(kind=MediaKind.IMAGE)) == {image.id, decoy.id}
    assert await ids(MediaFilter(status=MediaStatus.SUCCESS)) == {video.id}
    assert await ids(MediaFilter(date_from=day(2))) == {image.id, decoy.id}
    assert await ids(MediaFilter(date_from=day(1), date_to=day(3))) == {video.id, image.id}
    assert await ids(MediaFilter(date_to=day(1))) == set()
    assert await ids(MediaFilter(name_contains="50%_")) == {image.id}
    assert await ids(MediaFilter(name_contains="%")) == {image.id}
    assert await ids(MediaFilter(name_contains="_")) == {image.id, decoy.id}
    assert await ids(MediaFilter(name_contains="ÉTÉ À")) == {video.id}
    assert await ids(MediaFilter(name_contains="SUMMER")) == {undated.id}
    assert await ids(MediaFilter(name_contains="\\")) == set()
    assert await ids(MediaFilter(kind=MediaKind.IMAGE, name_contains="xx")) == {decoy.id}
    assert (await repo.list_media(None, MediaFilter(kind=MediaKind.VIDEO), 50, None)).items[
        0
    ].id == undated.id


async def test_concurrent_create_and_complete(repo: Repository) -> None:
    async def cycle(index: int) -> Media:
        media, upload = await repo.create_media(ALICE, new_media(f"c{index}.mp4"))
        return await complete(repo, media, upload, thumb=index % 2 == 0)

    done = await asyncio.gather(*(cycle(index) for index in range(50)))
    assert len({m.id for m in done}) == 50
    page = await repo.list_media(ALICE, MediaFilter(status=MediaStatus.SUCCESS), 100, None)
    assert {m.id for m in page.items} == {m.id for m in done}
    assert await repo.count_open_uploads(ALICE) == 0


@pytest.mark.postgres
async def test_closed_port_is_unavailable_quickly(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        await open_database(database_settings(url, tmp_path))
    assert caught.value.dependency == "database"
    assert time.monotonic() - started < 5


@pytest.mark.postgres
async def test_outage_and_recovery(postgres_template: str, tmp_path: Path) -> None:
    url = await create_database(postgres_template)
    proxy = TcpProxy()
    await proxy.start()
    database = await open_database(database_settings(proxy.url_for(url), tmp_path))
    try:
        repo = Repository(database)
        await database.ping()
        media, _ = await repo.create_media(ALICE, new_media())
        await proxy.cut()
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await database.ping()
        with pytest.raises(Unavailable) as caught:
            await repo.get_media(media.id, ALICE)
        assert caught.value.dependency == "database"
        assert time.monotonic() - started < 10
        await proxy.start()
        await database.ping()
        assert await repo.get_media(media.id, ALICE) is not None
    finally:
        await proxy.cut()
        await database.close()
        await drop_database(url)


def test_every_public_method_is_guarded() -> None:
    names = [name for name in vars(Repository) if not name.startswith("_")]
    assert "list_media" in names and "transition_upload" in names
    for name in names:
        assert hasattr(getattr(Repository, name), "__wrapped__"), name


async def test_sqlite_file_gone_is_unavailable(tmp_path: Path) -> None:
    settings = database_settings(f"sqlite:///{tmp_path / 'gone' / 'media.sqlite3'}", tmp_path)
    await migrate(settings)
    database = await open_database(settings)
    try:
        await database.ping()
        shutil.rmtree(tmp_path / "gone")
        with pytest.raises(Unavailable):
            await database.ping()
        with pytest.raises(Unavailable):
            await Repository(database).media_types()
    finally:
        await database.close()
