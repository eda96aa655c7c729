"""Reads and writes of share links and their media; part of the Repository (`repository.shares`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from media.clock import aware, utc
from media.db import Database, guarded
from media.errors import NotFound
from media.models import (
    Media,
    MediaEvent,
    MediaEventKind,
    NewShareLink,
    Owner,
    ShareCursor,
    ShareGrant,
    ShareLink,
    ShareLinkPage,
)

MediaModels = Callable[[list[dict[str, Any]]], Awaitable[list[Media]]]
Announce = Callable[[MediaEvent], Awaitable[None]]
Announced = Callable[[MediaEvent], None]


def _to_link(row: Mapping[str, Any], media_ids: tuple[str, ...]) -> ShareLink:
    return ShareLink(
        id=row["id"],
        token=row["token"],
        owner=Owner(subject=row["owner_subject"], issuer=row["owner_issuer"]),
        title=row["title"],
        expires_at=aware(row["expires_at"]),
        allow_download=bool(row["allow_download"]),
        password_hash=row["password_hash"],
        view_count=row["view_count"],
        created_at=aware(row["created_at"]),
        media_ids=media_ids,
    )


class ShareStore:
    """Share links as stored; driver errors surface as MediaErrors."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime],
        media_models: MediaModels,
        announce: Announce,
        announced: Announced,
    ) -> None:
        self._db = database
        self._t = database.tables
        self._clock = clock
        self._media_models = media_models  # the Repository's row -> Media (thumbnails joined)
        self._announce = announce  # the Repository's event channel (NOTIFY on PostgreSQL)
        self._announced = announced

    def _owned(self, owner: Owner) -> Any:
        link = self._t.share_link
        return (link.owner_issuer == owner.issuer) & (link.owner_subject == owner.subject)

    async def _media_ids(self, link_ids: Collection[str]) -> dict[str, tuple[str, ...]]:
        """The public ids of each link's media, in the owner's order."""
        if not link_ids:
            return {}
        s = self._t.share_media
        rows = await (
            s.select(s.link, s.media.public_id.as_alias("public_id"))
            .where(s.link.is_in(list(link_ids)))
            .order_by(s.position)
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row["link"], []).append(row["public_id"])
        return {link_id: tuple(ids) for link_id, ids in found.items()}

    async def _links(self, rows: list[dict[str, Any]]) -> list[ShareLink]:
        ids = await self._media_ids([row["id"] for row in rows])
        return [_to_link(row, ids.get(row["id"], ())) for row in rows]

    @guarded
    async def visible_media_ids(self, media_ids: Collection[str], owner: Owner | None) -> set[str]:
        """Those of `media_ids` that exist and that `owner` owns (None: an admin, any owner)."""
        if not media_ids:
            return set()
        m, b = self._t.media, self._t.binding
        query = m.select(m.public_id).where(m.public_id.is_in(list(media_ids)))
        if owner is not None:
            mine = b.select(b.media).where(
                (b.owner_issuer == owner.issuer) & (b.owner_subject == owner.subject)
            )
            query = query.where(m.id.is_in(mine))
        return {row["public_id"] for row in await query}

    @guarded
    async def count_links(self, owner: Owner) -> int:
        """How many links the owner has (expired ones included, until revoked)."""
        count: int = await self._t.share_link.count().where(self._owned(owner))
        return count

    @guarded
    async def create_link(self, owner: Owner, new: NewShareLink) -> ShareLink:
        """Store the link and its media in one transaction."""
        t, now = self._t, aware(self._clock())
        async with self._db.transaction():
            found = await t.media.select(t.media.id, t.media.public_id).where(
                t.media.public_id.is_in(list(new.media_ids))
            )
            keys = {row["public_id"]: row["id"] for row in found}
            if len(keys) != len(new.media_ids):
                raise NotFound("media", field="media_ids")  # deleted since it was checked
            row = t.share_link(
                id=new.id,
                token=new.token,
                owner_subject=owner.subject,
                owner_issuer=owner.issuer,
                title=new.title,
                expires_at=aware(new.expires_at),
                allow_download=new.allow_download,
                password_hash=new.password_hash,
                view_count=0,
                failed_attempts=0,
                attempt_window=0,
                created_at=now,
            )
            await t.share_link.insert(row)
            items = [
                t.share_media(link=new.id, media=keys[media_id], position=position)
                for position, media_id in enumerate(new.media_ids)
            ]
            await t.share_media.insert(*items)
        created = await self.link(new.id, owner)
        assert created is not None
        return created

    @guarded
    async def link(self, link_id: str, owner: Owner) -> ShareLink | None:
        """One link of `owner`, or None."""
        link = self._t.share_link
        rows = await link.select().where((link.id == link_id) & self._owned(owner))
        return (await self._links(rows))[0] if rows else None

    @guarded
    async def link_by_id(self, link_id: str) -> ShareLink | None:
        """A link of any owner, or None (the caller checks the token)."""
        link = self._t.share_link
        rows = await link.select().where(link.id == link_id)
        return (await self._links(rows))[0] if rows else None

    @guarded
    async def list_links(
        self, owner: Owner, first: int, after: ShareCursor | None
    ) -> ShareLinkPage:
        """One page of links, newest first by (created_at, id)."""
        link = self._t.share_link
        query = link.select().where(self._owned(owner))
        if after is not None:
            at = utc(after.created_at)
            query = query.where(
                (link.created_at < at) | ((link.created_at == at) & (link.id < after.id))
            )
        rows = await query.order_by(link.created_at, link.id, ascending=False).limit(first + 1)
        items = await self._links(rows[:first])
        return ShareLinkPage(items=tuple(items), has_next_page=len(rows) > first)

    @guarded
    async def delete_link(self, link_id: str, owner: Owner) -> bool:
        """Delete a link of `owner` and its media list; true when there was one."""
        link = self._t.share_link
        event = MediaEvent(kind=MediaEventKind.LINK_REVOKED.value, media_id="", link_id=link_id)
        async with self._db.transaction():
            rows = await (
                link.delete().where((link.id == link_id) & self._owned(owner)).returning(link.id)
            )
            if rows:  # every process drops its cached grant of the link
                await self._announce(event)
        if rows:
            self._announced(event)
        return bool(rows)

    @guarded
    async def grant(self, link_id: str) -> ShareGrant | None:
        """What URLs minted through the link may reach, or None when the link is gone."""
        link = self._t.share_link
        rows = await link.select(link.expires_at, link.allow_download).where(link.id == link_id)
        if not rows:
            return None
        ids = (await self._media_ids([link_id])).get(link_id, ())
        return ShareGrant(
            link_id=link_id,
            expires_at=aware(rows[0]["expires_at"]),
            allow_download=bool(rows[0]["allow_download"]),
            media_ids=frozenset(ids),
        )

    @guarded
    async def shared_media(self, link_id: str) -> list[Media]:
        """The media of a link in the owner's order (deleted media are gone from it)."""
        sql = (
            "SELECT m.* FROM share_link_media s JOIN media m ON m.id = s.media"
            " WHERE s.link = {} ORDER BY s.position"
        )
        return await self._media_models(await self._t.media.raw(sql, link_id))

    @guarded
    async def count_view(self, link_id: str) -> None:
        """One more view of the link."""
        link = self._t.share_link
        await link.update({link.view_count: link.view_count + 1}).where(link.id == link_id)

    @guarded
    async def take_attempt(self, link_id: str, window: int) -> int:
        """Count one password attempt in `window` (a new window starts again from one); return
        the attempts of the window so far, this one included."""
        sql = (
            "UPDATE share_link SET failed_attempts = CASE WHEN attempt_window = {} "
            "THEN failed_attempts + 1 ELSE 1 END, attempt_window = {} WHERE id = {} "
            "RETURNING failed_attempts"
        )
        # One conditional statement, never read-then-write: concurrent guesses each take one.
        rows = await self._t.share_link.raw(sql, window, window, link_id)
        return int(rows[0]["failed_attempts"]) if rows else 0

    @guarded
    async def give_back_attempt(self, link_id: str, window: int) -> None:
        """Return an attempt of `window` that turned out right: only wrong passwords count."""
        sql = (
            "UPDATE share_link SET failed_attempts = failed_attempts - 1 "
            "WHERE id = {} AND attempt_window = {} AND failed_attempts > 0"
        )
        await self._t.share_link.raw(sql, link_id, window)
