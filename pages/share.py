"""`GET|POST /s/{token}`: the page of a share link, rendered on the server.

No script at all, no asset from anywhere but the signed URLs of this service, a strict CSP whose
one inline style carries a per-response nonce, no referrer, no indexing, no caching. The password
form is a POST guarded three ways: a signed hidden field bound to the link and to a nonce that the
same browser holds in a SameSite=Strict cookie, the Fetch metadata, and the Origin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath
from litestar.response import Template

from media.errors import Unavailable
from media.models import MediaKind, Purpose, ShareAccess, SharedSet
from media.service import MediaService

TEMPLATE_DIRECTORY = Path(__file__).parent / "templates"
SHARE_PATH = "/s/{token:str}"
FORM_COOKIE = "share_form"
FORM_MAX_BODY_BYTES = 4096
RETRY_AFTER_S = 60
_FORM_TYPE = "application/x-www-form-urlencoded"

_STATUS = {
    ShareAccess.UNKNOWN: 404,
    ShareAccess.EXPIRED: 410,
    ShareAccess.PASSWORD_REQUIRED: 200,
    ShareAccess.WRONG_PASSWORD: 403,
    ShareAccess.RATE_LIMITED: 429,
    ShareAccess.GRANTED: 200,
}


@dataclass(frozen=True, slots=True)
class Item:
    """One media as the page shows it."""

    kind: str
    label: str
    src: str
    poster: str | None
    download: str | None
    width: int | None
    height: int | None
    hls: str | None = None  # the HLS master playlist, for browsers that play HLS natively
    media_type: str = ""  # what `src` serves


ICON_PATH = "/s/icon.svg"  # never a token: tokens have no dot
# The page's icon, so browsers do not ask for /favicon.ico (a 404 in the console) and no data: URL
# needs to be allowed by the CSP.
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect width="16" height="16" rx="3" fill="#3a7"/><path d="M6 4l6 4-6 4z" fill="#fff"/></svg>'
)


def share_page_handlers() -> list[HTTPRouteHandler]:
    """The handlers of the share page and its icon, to pass to the Litestar app."""
    return [show_link, unlock_link, share_icon]


@get(ICON_PATH, name="share-icon", include_in_schema=False, sync_to_thread=False)
def share_icon() -> Response[bytes]:
    """The icon of share pages."""
    headers = {
        "cache-control": "public, max-age=86400",
        "content-security-policy": "default-src 'none'",
        "x-content-type-options": "nosniff",
    }
    return Response(ICON, media_type="image/svg+xml", headers=headers)


@get(SHARE_PATH, name="share-page", include_in_schema=False)
async def show_link(token: FromPath[str], service: MediaService) -> Response[Any]:
    """The page of a link: its media, a password form, or a plain 404/410."""
    try:
        shared = await service.shares.open(token, None)
    except Unavailable:
        return _unavailable(service)
    return _render(service, token, shared)


@post(
    SHARE_PATH,
    name="share-unlock",
    include_in_schema=False,
    request_max_body_size=FORM_MAX_BODY_BYTES,
)
async def unlock_link(
    request: Request[Any, Any, Any], token: FromPath[str], service: MediaService
) -> Response[Any]:
    """The password form's answer: the media, the form again, or a refusal."""
    content_type, _ = request.content_type
    if content_type != _FORM_TYPE:
        return _plain(service, 415, "unsupported", "Send the form as a web form.")
    form = await request.form()
    password, field = form.get("password"), form.get("form_token")
    nonce = request.cookies.get(FORM_COOKIE, "")
    if (
        not isinstance(password, str)
        or not isinstance(field, str)
        or not _same_origin(request, service.parts.public_url)
        or not service.shares.form_token_valid(token, field, nonce)
    ):
        return _plain(service, 403, "stale", "This form has expired. Reload the page and retry.")
    try:
        shared = await service.shares.open(token, password)
    except Unavailable:
        return _unavailable(service)
    return _render(service, token, shared)


def _same_origin(request: Request[Any, Any, Any], public_url: str) -> bool:
    """Fetch metadata and Origin, where the browser sends them, say the form is our own."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin == "null":
        # Under Referrer-Policy: no-referrer a browser sends `Origin: null` with its own forms
        # (Fetch §3.1); Fetch metadata then still says whose form it was.
        return site == "same-origin"
    return origin is None or origin == _origin(public_url)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _icon(service: MediaService) -> str:
    return service.parts.public_url + ICON_PATH


def _headers(service: MediaService, nonce: str) -> dict[str, str]:
    origin = _origin(service.parts.public_url)
    policy = (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; img-src {origin}; media-src {origin}; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return {
        "content-security-policy": policy,
        "referrer-policy": "no-referrer",  # the page URL is the credential
        "x-robots-tag": "noindex, nofollow",
        "cache-control": "no-store",  # it holds signed URLs
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
    }


def _plain(service: MediaService, status: int, state: str, message: str) -> Template:
    nonce = secrets.token_urlsafe(16)
    return Template(
        template_name="share.html",
        context={
            "state": state,
            "message": message,
            "nonce": nonce,
            "og": None,
            "icon": _icon(service),
        },
        status_code=status,
        headers=_headers(service, nonce),
    )


def _unavailable(service: MediaService) -> Template:
    page = _plain(service, 503, "unavailable", "This page is unavailable; retry in a minute.")
    page.headers["retry-after"] = str(RETRY_AFTER_S)
    return page


def _render(service: MediaService, token: str, shared: SharedSet) -> Template:
    access = shared.access
    if access is ShareAccess.UNKNOWN:
        return _plain(service, 404, "gone", "This link does not exist, or it was revoked.")
    if access is ShareAccess.EXPIRED:
        return _plain(service, 410, "gone", "This link has expired.")
    if access is not ShareAccess.GRANTED:
        return _form(service, token, access)
    nonce = secrets.token_urlsafe(16)
    items = _items(service, shared)
    title = (shared.link.title if shared.link else None) or "Shared media"
    og = {
        "title": title,
        "url": f"{service.parts.public_url}/s/{token}",
        "image": next((item.poster for item in items if item.poster), None),
        "type": "video.other" if any(item.kind == "video" for item in items) else "website",
    }
    context = {
        "state": "granted",
        "title": title,
        "items": items,
        "nonce": nonce,
        "og": og,
        "icon": _icon(service),
    }
    return Template(
        template_name="share.html",
        context=context,
        status_code=_STATUS[access],
        headers=_headers(service, nonce),
    )


def _form(service: MediaService, token: str, access: ShareAccess) -> Template:
    nonce, form_nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    messages = {
        ShareAccess.WRONG_PASSWORD: "Wrong password.",
        ShareAccess.RATE_LIMITED: "Too many wrong passwords. Wait a few minutes and retry.",
    }
    context = {
        "state": "password",
        "message": messages.get(access),
        "form_token": service.shares.form_token(token, form_nonce),
        "nonce": nonce,
        # Nothing of the link before the password: no title, no image in link previews.
        "og": {"title": "Protected media", "url": None, "image": None, "type": "website"},
        "icon": _icon(service),
    }
    headers = _headers(service, nonce)
    if access is ShareAccess.RATE_LIMITED:
        headers["retry-after"] = str(RETRY_AFTER_S)
    cookie = Cookie(
        key=FORM_COOKIE,
        value=form_nonce,
        path=f"/s/{token}",
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=service.parts.public_url.startswith("https:"),
    )
    return Template(
        template_name="share.html",
        context=context,
        status_code=_STATUS[access],
        headers=headers,
        cookies=[cookie],
    )


def _items(service: MediaService, shared: SharedSet) -> list[Item]:
    link = shared.link
    assert link is not None
    items: list[Item] = []
    for number, media in enumerate(shared.medias, start=1):
        purpose = Purpose.STREAM
        src = service.shares.signed_url(link, media, purpose, None)
        if src is None:
            continue
        poster = service.shares.signed_url(link, media, Purpose.THUMBNAIL, None)
        download = service.shares.signed_url(link, media, Purpose.DOWNLOAD, None)
        hls = service.shares.signed_url(link, media, Purpose.HLS, None)
        kind = "video" if media.kind is MediaKind.VIDEO else "image"
        items.append(
            Item(
                kind=kind,
                label=f"{'Video' if kind == 'video' else 'Photo'} {number}",
                src=src.url,
                poster=poster.url if poster else None,
                download=download.url if download else None,
                width=media.width,
                height=media.height,
                hls=hls.url if hls else None,
                media_type=media.playback_media_type,
            )
        )
    return items
