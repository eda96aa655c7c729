"""Sending one streaming answer over ASGI: headers, body, and the end of the storage read."""

from __future__ import annotations

import logging

import anyio
import anyio.lowlevel
from litestar.types import Receive, Send

from media.errors import MediaError
from streaming.edge import Served
from streaming.responses import Answer, close_readers

logger = logging.getLogger("media.stream")


async def send_answer(
    result: Answer, send: Send, receive: Receive, served: Served, *, head: bool
) -> None:
    """Send `result`, noting in `served` its status and the body bytes the server took.

    A body that is one chunk goes out in one message. A longer one is sent while a watcher
    waits for the client to go away: the server drops the messages of a closed connection
    silently, so without it a gone client would have the whole object read for nothing. The
    storage read is closed however the send ends (docs/security.md INV-4)."""
    served.multipart = result.multipart
    try:
        served.status = result.status
        await send(
            {"type": "http.response.start", "status": result.status, "headers": result.headers}
        )
        if result.rest is None:
            body = b"" if head else result.body
            await send({"type": "http.response.body", "body": body, "more_body": False})
            served.body_sent(len(body))
        else:
            await _stream(result, send, receive, served)
    finally:
        if result.rest is not None:
            # Shielded: inside a cancelled scope every await of the reader's cleanup would be
            # cancelled too, leaving its file or storage body open.
            with anyio.CancelScope(shield=True):
                await close_readers(result.rest, *((result.source,) if result.source else ()))


async def _stream(result: Answer, send: Send, receive: Receive, served: Served) -> None:
    assert result.rest is not None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
        body = result.take_body()
        if body:
            await send({"type": "http.response.body", "body": body, "more_body": True})
            served.body_sent(len(body))
        del body  # held by nobody here while the rest streams
        try:
            async for chunk in result.rest:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                served.body_sent(len(chunk))
                # Neither a send to a gone client (dropped at once) nor a read of cached pages
                # (on the loop) gives the watcher a turn: without this, a client that left
                # while no send was waiting had the whole object read and counted as sent.
                await anyio.lowlevel.checkpoint()
        except MediaError as exc:
            # The headers are out, so no error status can follow: stop without completing the
            # body, and the server closes the connection short of Content-Length. The client sees
            # an incomplete answer, never wrong bytes (a stored object failing authentication).
            logger.error("stream stopped after %d bytes: %s", served.sent, exc.code)
            tasks.cancel_scope.cancel()
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        tasks.cancel_scope.cancel()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
