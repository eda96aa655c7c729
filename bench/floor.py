"""The Python floor: a bare ASGI app serving BENCH_FILE by os.pread, ranges included.

Run as `python -m uvicorn bench.floor:app`; it checks nothing and looks nothing up, so its cost is
what uvicorn plus one pread per chunk costs. Any path serves the same file. With BENCH_PATHSEND=1
and a server that offers the `http.response.pathsend` extension (granian), a full GET hands the
file to the server instead (zero-copy on its side).
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHUNK_BYTES = 256 * 1024
_RANGE = re.compile(rb"bytes=(\d+)-(\d+)")
_FILE = os.environ.get("BENCH_FILE", "/dev/null")
_FD = os.open(_FILE, os.O_RDONLY)
_PATHSEND = os.environ.get("BENCH_PATHSEND") == "1"
_SIZE = os.fstat(_FD).st_size


def _range(headers: list[tuple[bytes, bytes]]) -> tuple[int, int] | None:
    for name, value in headers:
        if name == b"range":
            match = _RANGE.fullmatch(value)
            if match:
                start, last = int(match[1]), min(int(match[2]), _SIZE - 1)
                if start <= last:
                    return start, last - start + 1
    return None


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the file: 206 for one `bytes=a-b` range, 200 for the whole."""
    if scope["type"] != "http":
        return
    wanted = _range(scope["headers"])
    start, length = wanted or (0, _SIZE)
    headers = [(b"content-type", b"video/mp4"), (b"content-length", str(length).encode())]
    if wanted:
        end = start + length - 1
        headers.append((b"content-range", f"bytes {start}-{end}/{_SIZE}".encode()))
    await send(
        {"type": "http.response.start", "status": 206 if wanted else 200, "headers": headers}
    )
    if _PATHSEND and not wanted and "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": _FILE})
        return
    position, end = start, start + length
    while position < end:
        block = os.pread(_FD, min(CHUNK_BYTES, end - position), position)
        position += len(block)
        await send({"type": "http.response.body", "body": block, "more_body": position < end})
