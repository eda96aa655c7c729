"""The use cases, one facade over identity, library, uploads and streams."""

from __future__ import annotations

import logging

from media.errors import Unavailable
from media.jobs import JobQueue
from media.service.collector import Collector
from media.service.context import Parts
from media.service.events import Events
from media.service.identity import Authenticator
from media.service.ingest import Ingest
from media.service.library import Library
from media.service.multipart import Multipart
from media.service.processing import Processing
from media.service.shares import CreateShareLink, Shares
from media.service.streams import Streams
from media.service.uploads import CreateUpload, Uploads

logger = logging.getLogger("media.service")

__all__ = [
    "CreateShareLink",
    "CreateUpload",
    "Events",
    "MediaService",
    "Parts",
]


class MediaService:
    """Everything the GraphQL and HTTP edges may ask of the core."""

    def __init__(self, parts: Parts, queue: JobQueue, events: Events | None = None) -> None:
        self.parts = parts
        self.events = events or Events()
        self.authenticator = Authenticator(parts)
        self.streams = Streams(parts)
        self.events.listen(self.streams.hear, self.streams.flush)
        self.library = Library(parts, self.events, on_change=self.streams.forget)
        ingest = Ingest(parts)
        self.processing = Processing(parts, ingest, queue)
        self.uploads = Uploads(parts, ingest, self.processing)
        self.multipart = Multipart(parts, self.uploads)
        self.collector = Collector(parts)
        self.shares = Shares(parts, on_revoke=self.streams.forget_link)

    async def readiness(self) -> dict[str, str]:
        """'ok' or the error code for each dependency."""
        report: dict[str, str] = {}
        for name, check in (
            ("database", self.parts.repository.ping),
            ("storage", self.parts.storage.ping),
        ):
            try:
                await check()
                report[name] = "ok"
            except Unavailable:
                report[name] = "unavailable"
            except Exception:  # an untranslated failure is still "not ready", never a 500
                logger.exception("readiness check of %s failed", name)
                report[name] = "unavailable"
        return report
