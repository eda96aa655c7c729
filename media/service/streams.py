"""Opening a signed read URL: token first, one cheap lookup, then storage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from datetime import datetime

from media.errors import InvalidSignature
from media.models import (
    ACCEPTED_TYPES,
    HlsFile,
    Media,
    MediaEvent,
    MediaEventKind,
    MediaStatus,
    Purpose,
    ShareGrant,
    StreamTarget,
    UrlClaims,
)
from media.service.cache import TtlCache
from media.service.context import Parts
from media.service.url_checks import counted_url_check
from media.telemetry.request import note_purpose

READ_PURPOSES = frozenset({Purpose.STREAM, Purpose.DOWNLOAD, Purpose.THUMBNAIL})
HLS_PURPOSES = frozenset({Purpose.HLS})
# A ladder file never changes while its media exists, and the row check before every lookup
# stops a revoked or deleted media's files: the name-to-object entries may live long.
LADDER_CACHE_S = 300.0
LADDER_CACHE_ENTRIES = 8192
_EXTENSIONS = {accepted.mime_type: f".{accepted.extension}" for accepted in ACCEPTED_TYPES}
# Other spellings a file name may already end with.
_ALIASES = {".jpg": (".jpeg",), ".heif": (".heic",), ".heic": (".heif",), ".mp4": (".m4v",)}


class Streams:
    """Use cases of the streaming edge."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        ttl = parts.settings.stream_cache_s
        # Verified claims and rows are kept a few seconds: one playback makes many requests.
        self._claims: TtlCache[str, UrlClaims] = TtlCache(ttl, 4096)
        self._rows: TtlCache[str, Media] = TtlCache(ttl, 4096)
        # Share links of URLs minted through one: revocation reaches other processes within
        # the same bound as media revocation (the TTL), and this process at once (forget_link).
        self._grants: TtlCache[str, ShareGrant] = TtlCache(ttl, 4096)
        self._ladder: TtlCache[tuple[str, str], HlsFile] = TtlCache(
            LADDER_CACHE_S if ttl > 0 else 0, LADDER_CACHE_ENTRIES
        )

    @counted_url_check
    async def open_stream(self, token: str) -> StreamTarget:
        """What to serve for a signed read URL; InvalidSignature for every refusal."""
        claims, media = await self._checked(token, READ_PURPOSES)
        # The generation check below stays exact against the row in hand.
        target = target_for(claims, media)
        note_purpose(claims.purpose.value)
        return target

    @counted_url_check
    async def open_hls(self, token: str, name: str) -> StreamTarget | None:
        """What to serve for the file `name` under an HLS URL: InvalidSignature for every
        refusal of the token (the same as /media), None when the ladder has no such file."""
        claims, media = await self._checked(token, HLS_PURPOSES)
        current = current_media(claims, media)
        media_id = current.id
        found = await self._ladder.get_or_load(
            (media_id, name), lambda: self._parts.repository.hls_file(media_id, name)
        )
        note_purpose(claims.purpose.value)
        if found is None:
            return None
        return StreamTarget(
            storage_key=found.storage_key,
            content_type=found.content_type,
            size=found.size_bytes,
            etag=found.etag,
            last_modified=current.created_at.replace(microsecond=0),
            disposition="inline",
            file_name=name.rpartition("/")[2],
            expires_at=claims.expires_at,
        )

    async def _checked(
        self, token: str, purposes: Collection[Purpose]
    ) -> tuple[UrlClaims, Media | None]:
        """The verified claims of a token for one of `purposes` and the row of its media."""
        claims = self._claims.get(token)
        if claims is None or claims.expires_at <= self._parts.clock():
            claims = self._parts.signer.verify(token, purposes)
            self._claims.put(token, claims)
        elif claims.purpose not in purposes:  # cached by the other route
            raise InvalidSignature("refused", reason="wrong_purpose")
        if claims.link_id is not None:
            await self._check_link(claims, claims.link_id)
        media_id = claims.media_id
        media = await self._rows.get_or_load(
            media_id, lambda: self._parts.repository.get_media(media_id, None)
        )
        return claims, media

    async def _check_link(self, claims: UrlClaims, link_id: str) -> None:
        shares = self._parts.repository.shares
        grant = await self._grants.get_or_load(link_id, lambda: shares.grant(link_id))
        check_grant(claims, grant, self._parts.clock())

    def forget(self, media_id: str) -> None:
        """Drop a cached row at once (revoked or deleted, in this process or another)."""
        self._rows.discard(media_id)

    def hear(self, event: MediaEvent) -> None:
        """An event of this process or another: drop what it makes stale."""
        if event.kind == MediaEventKind.LINK_REVOKED:
            self.forget_link(event.link_id)
        else:
            self.forget(event.media_id)

    def forget_link(self, link_id: str) -> None:
        """Drop a cached share link at once (revoked in this process)."""
        self._grants.discard(link_id)

    def flush(self) -> None:
        """Drop every cached row, token and link (events of other processes may have been
        missed)."""
        self._rows.clear()
        self._claims.clear()
        self._grants.clear()

    def read_object(self, storage_key: str, start: int, length: int) -> AsyncIterator[bytes]:
        """Bounded chunks of one stored object."""
        return self._parts.storage.read(storage_key, start, length)


def check_grant(claims: UrlClaims, grant: ShareGrant | None, now: datetime) -> None:
    """Refuse a URL minted through a link that is gone, expired, or never granted this."""
    if grant is None:
        raise InvalidSignature("refused", reason="link revoked")
    if grant.expires_at <= now:
        raise InvalidSignature("refused", reason="link expired")
    if claims.media_id not in grant.media_ids:
        raise InvalidSignature("refused", reason="not in link")
    if claims.purpose is Purpose.DOWNLOAD and not grant.allow_download:
        raise InvalidSignature("refused", reason="download not allowed")


def current_media(claims: UrlClaims, media: Media | None) -> Media:
    """The media when the claims still hold against its current row: present, ready, and of
    the generation the URL was issued for (docs/security.md §1.12)."""
    if media is None:
        raise InvalidSignature("refused", reason="media absent")
    if media.status is not MediaStatus.SUCCESS:
        raise InvalidSignature("refused", reason="media not ready")
    if media.url_generation != claims.generation:
        raise InvalidSignature("refused", reason="revoked")
    return media


def target_for(claims: UrlClaims, media: Media | None) -> StreamTarget:
    """Check the claims against the current row and describe the bytes to serve."""
    media = current_media(claims, media)
    # Ownership never changes, so a URL issued to a subject stays as visible as when issued;
    # deletion and revocation are what end it, and both are checked above.
    last_modified = media.created_at.replace(microsecond=0)
    if claims.purpose is Purpose.THUMBNAIL:
        thumb = media.thumbnail
        if thumb is None:
            raise InvalidSignature("refused", reason="no thumbnail")
        return StreamTarget(
            storage_key=thumb.storage_key,
            content_type="image/jpeg",
            size=thumb.size_bytes,
            etag=thumb.etag,
            last_modified=last_modified,
            disposition="inline",
            file_name=f"{_stem(_shown_name(claims, media))}-thumbnail.jpg",
            expires_at=claims.expires_at,
        )
    rendition = media.rendition
    if claims.purpose is Purpose.STREAM and rendition is not None:
        # What a browser can play or show; the original stays what downloads get.
        return StreamTarget(
            storage_key=rendition.storage_key,
            content_type=rendition.media_type,
            size=rendition.size_bytes,
            etag=rendition.etag,
            last_modified=last_modified,
            disposition="inline",
            file_name=_named(_stem(_shown_name(claims, media)), rendition.media_type),
            expires_at=claims.expires_at,
        )
    if media.size_bytes is None or media.etag is None:
        raise InvalidSignature("refused", reason="object unknown")
    return StreamTarget(
        storage_key=media.storage_key,
        content_type=media.media_type,
        size=media.size_bytes,
        etag=media.etag,
        last_modified=last_modified,
        disposition="attachment" if claims.purpose is Purpose.DOWNLOAD else "inline",
        file_name=_named(_shown_name(claims, media), media.media_type),
        expires_at=claims.expires_at,
    )


def _stem(name: str) -> str:
    stem, dot, _ = name.rpartition(".")
    return stem if dot and stem else name


def _shown_name(claims: UrlClaims, media: Media) -> str:
    # The owner's file name is not shown through a share link; the kind stands in for it.
    return media.kind.value if claims.link_id is not None else media.name


def _named(name: str, media_type: str) -> str:
    """The name, ending with the extension of media_type unless it already does."""
    extension = _EXTENSIONS.get(media_type, "")
    if name.lower().endswith((extension, *_ALIASES.get(extension, ()))):
        return name
    return name + extension
