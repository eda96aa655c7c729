"""Share links: the `anonymous` scope. Owners create and revoke them; anyone holding the token
sees the linked media through URLs that carry the link and die with it."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from media.config import URL_TTL_CAP_S
from media.errors import InvalidInput, NotFound
from media.models import (
    SHARE_TITLE_LENGTH,
    Media,
    MediaStatus,
    NewShareLink,
    Owner,
    Principal,
    Purpose,
    ShareAccess,
    SharedSet,
    ShareLink,
    ShareLinkPage,
    SignedUrl,
)
from media.service import inputs
from media.service.context import Parts
from media.service.cursor import decode_share_cursor
from media.service.identity import owner_filter, require_user
from media.service.playback import playback_ttl, url_path

MAX_SHARE_MEDIA = 500
MAX_PASSWORD_LENGTH = 256
LINK_ID_BYTES = 12  # 16 URL-safe characters: an id, not a secret
LINK_ID_LENGTH = 16
LINK_SECRET_BYTES = 32  # 43 URL-safe characters, 256 bits: the capability itself
# A token is the link id followed by the secret: the database is searched by the id only, so the
# secret is never a query parameter, and it is compared in constant time.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{59}")
# Wrong passwords per link: at most MAX_FAILED_ATTEMPTS in each window of ATTEMPT_WINDOW_S.
ATTEMPT_WINDOW_S = 300
MAX_FAILED_ATTEMPTS = 5
FORM_MAX_AGE_S = 3600
HASHING_CONCURRENCY = 2


@dataclass(frozen=True, slots=True)
class CreateShareLink:
    """What createShareLink asks for, as the edge parsed it."""

    media_ids: tuple[str, ...]
    expires_in: int
    allow_download: bool = False
    password: str | None = None
    title: str | None = None


class Shares:
    """Use cases of share links."""

    def __init__(self, parts: Parts, on_revoke: Callable[[str], None] = lambda _: None) -> None:
        self._parts = parts
        self._store = parts.repository.shares
        self._on_revoke = on_revoke  # drops the link's cached grant on the streaming path
        self._hasher = PasswordHasher()
        # argon2id takes 64 MiB and ~0.2 s of CPU per hash by design: bound how many run at once.
        self._hashing = anyio.CapacityLimiter(HASHING_CONCURRENCY)
        self._forms = parts.signer.form_tokens()

    async def create(self, principal: Principal, request: CreateShareLink) -> ShareLink:
        """A new link to some of the caller's media."""
        require_user(principal)
        media_ids = _media_ids(request.media_ids)
        settings = self._parts.settings
        inputs.expires_in(request.expires_in)
        # Asking for more than the cap gets the cap; expiresAt says what was granted.
        ttl = min(request.expires_in, settings.share_max_ttl_s)
        title = _title(request.title)
        owner = Owner.of(principal)
        if await self._store.count_links(owner) >= settings.max_share_links:
            raise InvalidInput(
                f"at most {settings.max_share_links} share links per user; revoke some first",
                field="input",
                limit=settings.max_share_links,
            )
        visible = await self._store.visible_media_ids(media_ids, owner_filter(principal))
        if len(visible) != len(media_ids):
            raise NotFound("media", field="media_ids")
        password_hash = None
        if request.password is not None:
            password = _password(request.password)
            password_hash = await anyio.to_thread.run_sync(
                self._hasher.hash, password, limiter=self._hashing
            )
        link_id = secrets.token_urlsafe(LINK_ID_BYTES)
        new = NewShareLink(
            id=link_id,
            token=link_id + secrets.token_urlsafe(LINK_SECRET_BYTES),
            title=title,
            expires_at=self._parts.clock() + timedelta(seconds=ttl),
            allow_download=request.allow_download,
            password_hash=password_hash,
            media_ids=media_ids,
        )
        return await self._store.create_link(owner, new)

    async def list_links(
        self, principal: Principal, *, first: int, after: str | None
    ) -> ShareLinkPage:
        """One page of the caller's own links, newest first."""
        inputs.page_size(first)
        cursor = decode_share_cursor(after) if after else None
        require_user(principal)
        return await self._store.list_links(Owner.of(principal), first, cursor)

    async def revoke(self, principal: Principal, link_id: str) -> bool:
        """Delete one of the caller's links; every URL minted through it stops working."""
        require_user(principal)
        revoked = await self._store.delete_link(link_id, Owner.of(principal))
        self._on_revoke(link_id)
        return revoked

    async def owner_medias(self, link: ShareLink) -> list[Media]:
        """Every media still in a link, for its owner (any status)."""
        return await self._store.shared_media(link.id)

    def url(self, link: ShareLink) -> str:
        """The page of a link."""
        return f"{self._parts.public_url}/s/{link.token}"

    async def open(self, token: str, password: str | None) -> SharedSet:
        """What the holder of `token` may see; only GRANTED carries the link and its media."""
        if not _TOKEN.fullmatch(token):
            return SharedSet(ShareAccess.UNKNOWN)
        link = await self._store.link_by_id(token[:LINK_ID_LENGTH])
        if link is None or not hmac.compare_digest(link.token.encode(), token.encode()):
            return SharedSet(ShareAccess.UNKNOWN)
        now = self._parts.clock()
        if link.expires_at <= now:
            return SharedSet(ShareAccess.EXPIRED)
        if link.password_hash is not None:
            if password is None:
                return SharedSet(ShareAccess.PASSWORD_REQUIRED)
            window = int(now.timestamp()) // ATTEMPT_WINDOW_S
            # The attempt is taken before hashing, so a burst of concurrent guesses cannot all
            # pass the check at once; a right password gives it back.
            if await self._store.take_attempt(link.id, window) > MAX_FAILED_ATTEMPTS:
                return SharedSet(ShareAccess.RATE_LIMITED)
            if not await self._password_matches(link.password_hash, password):
                return SharedSet(ShareAccess.WRONG_PASSWORD)
            await self._store.give_back_attempt(link.id, window)
        await self._store.count_view(link.id)
        medias = await self._store.shared_media(link.id)
        ready = tuple(media for media in medias if media.status is MediaStatus.SUCCESS)
        return SharedSet(ShareAccess.GRANTED, link, ready)

    async def _password_matches(self, password_hash: str, password: str) -> bool:
        if len(password) > MAX_PASSWORD_LENGTH:
            return False

        def verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (Argon2Error, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(verify, limiter=self._hashing)

    def signed_url(
        self, link: ShareLink, media: Media, purpose: Purpose, expires_in: int | None
    ) -> SignedUrl | None:
        """A read URL minted through `link`: anonymous, bound to the link, never past its end."""
        if purpose is Purpose.DOWNLOAD and not link.allow_download:
            return None
        if media.status is not MediaStatus.SUCCESS or media.id not in link.media_ids:
            return None
        if purpose is Purpose.THUMBNAIL and not media.has_thumbnail:
            return None
        if purpose is Purpose.HLS and not media.has_hls:
            return None
        inputs.expires_in(expires_in)
        ttl = self._parts.settings.url_ttl_s if expires_in is None else expires_in
        if expires_in is None and purpose in (Purpose.STREAM, Purpose.HLS):
            ttl = playback_ttl(ttl, media.duration_seconds)
        remaining = math.floor((link.expires_at - self._parts.clock()).total_seconds())
        ttl = min(ttl, URL_TTL_CAP_S, remaining)
        if ttl < 1:
            return None
        token, expires_at = self._parts.signer.sign(
            purpose,
            media_id=media.id,
            subject="",
            generation=media.url_generation,
            ttl_s=ttl,
            link_id=link.id,
        )
        return SignedUrl(
            url=self._parts.public_url + url_path(purpose, token), expires_at=expires_at
        )

    def form_token(self, token: str, nonce: str) -> str:
        """The hidden field of a link's password form, bound to the link and a cookie nonce."""
        return self._forms.issue(_form_subject(token), nonce)

    def form_token_valid(self, token: str, value: str, nonce: str) -> bool:
        """True when a posted form field belongs to this link and this browser's nonce."""
        return self._forms.check(value, _form_subject(token), nonce, FORM_MAX_AGE_S)


def _form_subject(token: str) -> str:
    # The link token itself never goes into a form (the form token is readable base64).
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _media_ids(values: Sequence[str]) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(values))  # duplicates collapse, the order stays
    if not ids:
        raise InvalidInput("{field} must name at least one media", field="media_ids")
    if len(ids) > MAX_SHARE_MEDIA:
        raise InvalidInput(
            f"at most {MAX_SHARE_MEDIA} media per link", field="media_ids", limit=MAX_SHARE_MEDIA
        )
    return ids


def _title(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    title = value.strip()
    if len(title) > SHARE_TITLE_LENGTH:
        raise InvalidInput(
            f"title has at most {SHARE_TITLE_LENGTH} characters",
            field="title",
            limit=SHARE_TITLE_LENGTH,
        )
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in title):
        raise InvalidInput("title contains control or format characters", field="title")
    return title


def _password(value: str) -> str:
    if not value:
        raise InvalidInput("password must not be empty (leave it out for none)", field="password")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password has at most {MAX_PASSWORD_LENGTH} characters",
            field="password",
            limit=MAX_PASSWORD_LENGTH,
        )
    return value
