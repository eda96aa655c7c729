"""Reading and managing media: get, list, signed URLs, delete, revoke."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import anyio

from media.config import URL_TTL_CAP_S
from media.errors import InvalidInput, MediaError, NotFound, Unavailable
from media.models import (
    Media,
    MediaFilter,
    MediaPage,
    MediaStatus,
    Principal,
    Purpose,
    SignedUrl,
)
from media.service import inputs
from media.service.context import Parts
from media.service.cursor import decode_cursor
from media.service.events import Events
from media.service.identity import owner_filter, require_user
from media.service.playback import playback_ttl, url_path

logger = logging.getLogger("media.library")

DELETE_ATTEMPTS = 3
# Objects deleted at once: a video's HLS ladder is hundreds of objects, and one round trip to S3
# after the other would hold the mutation for minutes; the storage pool bounds the rest.
DELETE_CONCURRENCY = 8


class Library:
    """Use cases over stored media."""

    def __init__(
        self, parts: Parts, events: Events, on_change: Callable[[str], None] = lambda _: None
    ) -> None:
        self._parts = parts
        self._events = events
        self._on_change = on_change  # drops cached rows of the streaming path

    async def get_media(self, principal: Principal, media_id: str) -> Media | None:
        """The media when it exists and the caller may see it, else None."""
        if principal.is_anonymous or not principal.is_user:
            return None  # nothing is public today
        return await self._parts.repository.get_media(media_id, owner_filter(principal))

    async def watch(self, principal: Principal, media_id: str) -> AsyncIterator[Media]:
        """The media as it is now, then each changed state until SUCCESS or FAILED; NotFound
        when it is absent or not the caller's (the same answer for both)."""
        with self._events.watch(media_id) as changed:  # listen first, then read
            current = await self.get_media(principal, media_id)
            if current is None:
                raise NotFound("media", id=media_id)
            yield current
            while current.status is MediaStatus.IN_PROGRESS:
                await changed.wait()
                latest = await self.get_media(principal, media_id)
                if latest is None:
                    return  # deleted meanwhile: the stream ends
                if latest != current:
                    current = latest
                    yield current

    async def list_media(
        self,
        principal: Principal,
        *,
        first: int,
        after: str | None,
        media_filter: MediaFilter,
    ) -> MediaPage:
        """One page of the caller's media, newest first."""
        inputs.page_size(first)
        media_filter = _checked(media_filter)
        cursor = decode_cursor(after) if after else None
        if principal.is_anonymous or not principal.is_user:
            return MediaPage(items=(), has_next_page=False)
        return await self._parts.repository.list_media(
            owner_filter(principal), media_filter, first, cursor
        )

    def signed_url(
        self, principal: Principal, media: Media, purpose: Purpose, expires_in: int | None
    ) -> SignedUrl | None:
        """A fresh read URL for a media the caller sees; None when there is nothing to read."""
        if media.status is not MediaStatus.SUCCESS:
            return None
        if purpose is Purpose.THUMBNAIL and not media.has_thumbnail:
            return None
        if purpose is Purpose.HLS and not media.has_hls:
            return None
        inputs.expires_in(expires_in)
        settings = self._parts.settings
        ttl = settings.url_ttl_s if expires_in is None else expires_in
        if expires_in is None and purpose in (Purpose.STREAM, Purpose.HLS):
            ttl = playback_ttl(ttl, media.duration_seconds)  # docs/hls.md: token lifetime
        # A client asking for more than the cap gets the cap (docs/security.md §1.4).
        ttl = min(ttl, URL_TTL_CAP_S)
        token, expires_at = self._parts.signer.sign(
            purpose,
            media_id=media.id,
            subject=principal.subject,
            generation=media.url_generation,
            ttl_s=ttl,
        )
        return SignedUrl(
            url=self._parts.public_url + url_path(purpose, token), expires_at=expires_at
        )

    async def revoke_urls(self, principal: Principal, media_id: str) -> Media:
        """Invalidate every URL issued so far for this media."""
        require_user(principal)
        await self._visible(principal, media_id)
        media = await self._parts.repository.bump_generation(media_id)
        self._on_change(media_id)
        if media is None:
            raise NotFound("media", id=media_id)
        return media

    async def delete_media(self, principal: Principal, media_id: str) -> bool:
        """Remove the rows, then the objects; true when something was deleted."""
        require_user(principal)
        if await self._parts.repository.get_media(media_id, owner_filter(principal)) is None:
            return False  # idempotent: deleting twice is not an error
        keys = await self._parts.repository.delete_media(media_id)
        self._on_change(media_id)
        limiter = anyio.CapacityLimiter(DELETE_CONCURRENCY)
        # A ladder is hundreds of keys: once one delete met an outage through all its attempts,
        # the rest are left for the collector instead of each waiting out the same outage.
        store_down = anyio.Event()
        skipped = 0

        async def delete(key: str) -> None:
            nonlocal skipped
            async with limiter:
                if store_down.is_set():
                    skipped += 1
                elif not await self._delete_object(key):
                    store_down.set()

        async with anyio.create_task_group() as group:  # _delete_object never raises
            for key in keys or ():
                group.start_soon(delete, key)
        if skipped:
            logger.warning("storage unavailable: %d more object(s) left for the collector", skipped)
        return keys is not None

    async def _visible(self, principal: Principal, media_id: str) -> Media:
        media = await self._parts.repository.get_media(media_id, owner_filter(principal))
        if media is None:
            raise NotFound("media", id=media_id)
        return media

    async def _delete_object(self, key: str) -> bool:
        """Delete one object; False when storage stayed unavailable through every attempt.

        The rows are gone first, so a failure here leaves an orphan object, never a row
        pointing at nothing; the orphan is logged for the garbage collector."""
        attempt = 1
        while True:
            try:
                await self._parts.storage.delete(key)
                return True
            except Unavailable:
                if attempt == DELETE_ATTEMPTS:
                    logger.warning("object delete failed after %d attempts; orphan left", attempt)
                    return False
            except MediaError as exc:  # not passing: no retry, the collector takes it later
                logger.warning("object delete failed (%s); orphan left", exc.code)
                return True
            await anyio.sleep(0.2 * attempt)
            attempt += 1


def _checked(media_filter: MediaFilter) -> MediaFilter:
    """The filter with its dates in UTC; InvalidInput for dates no query could use."""
    start, end = media_filter.date_from, media_filter.date_to
    if start is not None:
        start = inputs.instant(start, "date_from")
    if end is not None:
        end = inputs.instant(end, "date_to")
    if isinstance(start, datetime) and isinstance(end, datetime) and start > end:
        raise InvalidInput("mediaDateFrom is after mediaDateTo", field="filter")
    if media_filter.name_contains is not None and len(media_filter.name_contains) > 255:
        raise InvalidInput("name filter too long", field="name_contains")
    return dataclasses.replace(media_filter, date_from=start, date_to=end)
