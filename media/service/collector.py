"""The orphan collector (docs/security.md INV-3): objects no row names, left by a crash."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from media.errors import NotFound
from media.service.context import Parts

logger = logging.getLogger("media.collector")

BATCH = 500
MIN_GRACE = timedelta(hours=1)


class Collector:
    """Deletes stored objects without a row once they are older than any upload can run."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        # An object is written before the row that names it (a faststart copy, a thumbnail): the
        # grace outlasts the longest upload plus its processing, so such objects are never taken.
        self.grace = max(MIN_GRACE, 2 * parts.settings.longest_upload)

    async def collect(self) -> int:
        """One pass over the store; returns how many objects were removed."""
        storage, repository = self._parts.storage, self._parts.repository
        cutoff = self._parts.clock() - self.grace
        keys = await storage.keys()
        removed = 0
        for start in range(0, len(keys), BATCH):
            batch = keys[start : start + BATCH]
            named = await repository.referenced_keys(batch)
            for key in batch:
                if key in named:
                    continue
                try:
                    info = await storage.stat(key)
                except NotFound:
                    continue
                if info.last_modified < cutoff:
                    await storage.delete(key)
                    removed += 1
        # Multipart uploads live longer than the grace; their rows say which are still open.
        live = await repository.open_multipart_keys()
        removed += await storage.sweep_partial(cutoff, keep=live)
        if removed:
            logger.info("collector removed %d orphan object(s) or unfinished write(s)", removed)
        envelopes = await self._orphan_envelopes(cutoff, frozenset(keys))
        if envelopes:
            logger.info("collector removed %d envelope(s) of objects never stored", envelopes)
        return removed

    async def _orphan_envelopes(self, cutoff: datetime, stored: frozenset[str]) -> int:
        """Envelope rows (encryption at rest) of writes that crashed before storing a byte."""
        repository = self._parts.repository
        after, removed = "", 0
        while batch := await repository.envelope_keys_before(cutoff, after, BATCH):
            after = batch[-1]
            named = await repository.referenced_keys(batch)
            for key in batch:
                if key not in named and key not in stored:
                    await repository.delete_envelope(key)
                    removed += 1
        return removed
