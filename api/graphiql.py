"""The GraphiQL page and its vendored assets, served by the app itself (no CDN)."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from litestar import MediaType, Response

STATIC_DIR = Path(__file__).parent / "static" / "graphiql"
PAGE_FILE = "index.html"
CACHE_FOREVER = "public, max-age=31536000, immutable"
# Litestar adds `; charset=utf-8` to every text/* media type.
_CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css"}
_TOKEN = re.compile(r"\{\{(src|sri):([A-Za-z0-9._-]+)\}\}")

# The page runs only files from this origin; inline styles are needed by GraphiQL itself.
PAGE_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file held in memory with its validators."""

    name: str
    body: bytes
    content_type: str
    etag: str
    integrity: str


def _asset(path: Path) -> Asset:
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:16]
    sri = base64.b64encode(hashlib.sha384(body).digest()).decode()
    return Asset(
        name=path.name,
        body=body,
        content_type=_CONTENT_TYPES[path.suffix],
        etag=f'"{digest}"',
        integrity=f"sha384-{sri}",
    )


@functools.cache
def assets() -> dict[str, Asset]:
    """Every servable asset by file name (loaded once; only .js and .css are served)."""
    return {
        path.name: _asset(path)
        for path in sorted(STATIC_DIR.iterdir())
        if path.is_file() and path.suffix in _CONTENT_TYPES
    }


@functools.cache
def page(static_prefix: str) -> str:
    """The GraphiQL HTML with asset URLs under `static_prefix` and their SRI hashes."""
    table = assets()
    template = (STATIC_DIR / PAGE_FILE).read_text(encoding="utf-8")

    def substitute(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        asset = table[name]
        if kind == "sri":
            return asset.integrity
        # The version query changes with the bytes, so caching forever stays correct.
        return f"{static_prefix}/{name}?v={asset.etag.strip(chr(34))}"

    return _TOKEN.sub(substitute, template)


def page_response(static_prefix: str) -> Response[str]:
    """The GraphiQL page with a strict Content-Security-Policy."""
    return Response(
        page(static_prefix),
        media_type=MediaType.HTML,
        headers={
            "Content-Security-Policy": PAGE_SECURITY_POLICY,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def asset_response(name: str, if_none_match: str | None) -> Response[bytes]:
    """One asset with long-lived caching; 304 when the client holds it; 404 for unknown names."""
    asset = assets().get(name)
    if asset is None:
        return Response(b"not found", status_code=404, media_type=MediaType.TEXT)
    headers = {
        "Cache-Control": CACHE_FOREVER,
        "ETag": asset.etag,
        "X-Content-Type-Options": "nosniff",
    }
    # RFC 9110 §13.1.2: If-None-Match uses the weak comparison.
    if if_none_match and _matches(if_none_match, asset.etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags
