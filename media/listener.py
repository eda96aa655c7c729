"""The one LISTEN connection of a process (PostgreSQL): media events from every process.

asyncpg does not reconnect a listening connection; this loop does, with backoff, and calls
`on_reset` after every (re)connect because notifications sent meanwhile are lost for good.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import asyncpg

from media.config import Settings
from media.models import MediaEvent
from media.telemetry.metrics import LISTENER_RECONNECTS

logger = logging.getLogger("media.events")

PAUSE_MIN_S = 0.1
PAUSE_MAX_S = 5.0
# A silent network drop is only noticed by using the connection (asyncpg#519).
LIVENESS_EVERY_S = 15.0


CHANNEL = "media_events"


def event_payload(event: MediaEvent) -> str:
    """The NOTIFY payload of an event: a few bytes, far below PostgreSQL's 8000-byte limit."""
    data = {"kind": event.kind, "media": event.media_id}
    if event.link_id:
        data["link"] = event.link_id
    return json.dumps(data, separators=(",", ":"))


def parse_event(payload: str) -> MediaEvent | None:
    """The event of a notification payload, or None when it is not one of ours."""
    try:
        data = json.loads(payload)
        return MediaEvent(
            kind=str(data["kind"]), media_id=str(data["media"]), link_id=str(data.get("link", ""))
        )
    except (ValueError, KeyError, TypeError):
        return None


class Listener:
    """Keeps one listening connection open and hands its events over."""

    def __init__(
        self,
        settings: Settings,
        on_event: Callable[[MediaEvent], None],
        on_reset: Callable[[], None],
    ) -> None:
        url = settings.database
        self._connect: dict[str, Any] = {
            "host": url.host,
            "port": url.port,
            "user": url.user,
            "database": url.database,
            "timeout": min(5.0, settings.database_timeout_s),
            "server_settings": {"application_name": "media-service-events"},
        }
        if url.password is not None:
            self._connect["password"] = url.password
        self._on_event = on_event
        self._on_reset = on_reset
        self.connected = anyio.Event()  # set on the first successful LISTEN (tests wait on it)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        event = parse_event(payload)
        if event is not None:
            self._on_event(event)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        pause = PAUSE_MIN_S
        first = True
        while True:
            if not first:
                LISTENER_RECONNECTS.inc()
            first = False
            try:
                await self._listen_once()
                pause = PAUSE_MIN_S  # it was up: reconnect quickly
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("event listener down (%s); retrying", type(exc).__name__)
            await anyio.sleep(pause)
            pause = min(pause * 2, PAUSE_MAX_S)

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(**self._connect)
        lost = anyio.Event()
        try:
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANNEL, self._notified)
            # LISTEN first, then flush: whatever changed before is read fresh from here on.
            self._on_reset()
            self.connected.set()
            logger.info("event listener connected")
            while not lost.is_set():
                with anyio.move_on_after(LIVENESS_EVERY_S):
                    await lost.wait()
                if not lost.is_set():
                    with anyio.fail_after(self._connect["timeout"]):
                        await connection.fetchval("SELECT 1")
            logger.warning("event listener connection lost")
        finally:
            connection.terminate()  # immediate, never blocks: nothing is left to flush
