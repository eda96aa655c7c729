"""`/hls/{token}/{name}` (GET, HEAD, OPTIONS): the files of a video's HLS ladder under one token.

The token sits in the path, so the relative URIs of the playlists (`720p/index.m3u8`,
`init.mp4`, `seg_00001.m4s`) resolve under it and no playlist is ever rewritten. The name is
never joined to a path: it is looked up, exactly as sent, among the files the ladder recorded.
It is read from the raw request path, because the router hands over `720p%2Findex.m3u8` decoded
(`720p/index.m3u8`): an escape of any kind, a dot segment or an odd character names nothing.
Like `/media` (streaming/routes.py), a raw ASGI route outside the app's middleware; ranges,
conditionals, HEAD, CORS and caching are the same code.
"""

from __future__ import annotations

import re

from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

from streaming import responses as answer
from streaming.edge import RouteEdge, Served
from streaming.routes import StreamConfig, dispatch
from streaming.send_answer import send_answer

HLS_MOUNT = "/hls"
HLS_ROUTE = "/hls/{token}/{name}"
# Tokens are URL-safe base64 and dots; ladder names are `master.m3u8` or `RUNG/FILE`.
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,1024}")
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,40}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,40})?")


def ladder_path(scope: HTTPScope) -> tuple[str, str] | None:
    """(token, name) of a request for `/hls/TOKEN/NAME`, from the bytes the client sent; None
    for anything else. No segment may start with a dot, so `.` and `..` are never names."""
    raw = scope.get("raw_path")
    if raw is None:  # a server without raw_path: the decoded path is all there is
        raw = (HLS_MOUNT + scope["path"].rstrip("/")).encode("utf-8")
    root = scope.get("root_path", "").encode("utf-8")
    if root and raw.startswith(root):
        raw = raw[len(root) :]
    if not raw.startswith(b"/hls/") or not raw.isascii():
        return None
    token, _, name = raw[len(b"/hls/") :].decode("ascii").partition("/")
    if _TOKEN.fullmatch(token) is None or _NAME.fullmatch(name) is None:
        return None
    return token, name


def hls_endpoint(config: StreamConfig, edge: RouteEdge) -> ASGIApp:
    """The ASGI endpoint of the ladder route, sharing `/media`'s config, log and metrics."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            raise NotFoundException()
        http = scope  # narrowed by the check above

        async def answering(served: Served, send: Send) -> None:
            found = ladder_path(http)
            if found is None:
                origin = next((v for k, v in http["headers"] if k == b"origin"), None)
                result = answer.not_found(config.common_headers(origin))
                await send_answer(result, send, receive, served, head=http["method"] == "HEAD")
                return
            token, name = found
            await dispatch(
                config, http, lambda source: source.open_hls(token, name), receive, send, served
            )

        await edge.run(http, HLS_ROUTE, send, answering)

    return endpoint
