"""Media events inside one process: wake subscriptions, evict caches.

Events come from this process's own writes (SQLite) or from every process's writes through the
PostgreSQL listener. An event only says "this media changed": whoever cares reads the row again,
so a burst of events costs one read and a missed one is repaired by `reset` (docs/events.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import anyio

from media.models import MediaEvent


class Signal:
    """Set when the watched media may have changed since the last `wait` returned."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        """Something changed (or may have)."""
        self._event.set()

    async def wait(self) -> None:
        """Return once something changed since the previous call (at once if it already did)."""
        await self._event.wait()
        self._event = anyio.Event()


class Events:
    """One per process: fans media events out to subscriptions and cache listeners."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Signal]] = {}
        self._on_event: list[Callable[[MediaEvent], None]] = []
        self._on_reset: list[Callable[[], None]] = []

    def listen(self, on_event: Callable[[MediaEvent], None], on_reset: Callable[[], None]) -> None:
        """Call `on_event` for every event and `on_reset` whenever events may have been missed."""
        self._on_event.append(on_event)
        self._on_reset.append(on_reset)

    @contextlib.contextmanager
    def watch(self, media_id: str) -> Iterator[Signal]:
        """A signal set by every event of `media_id` while the block runs."""
        signal = Signal()
        self._watchers.setdefault(media_id, set()).add(signal)
        try:
            yield signal
        finally:
            watchers = self._watchers.get(media_id)
            if watchers is not None:
                watchers.discard(signal)
                if not watchers:
                    del self._watchers[media_id]

    def deliver(self, event: MediaEvent) -> None:
        """An event happened (here or in another process)."""
        for callback in self._on_event:
            callback(event)
        for signal in self._watchers.get(event.media_id, ()):
            signal.set()

    def reset(self) -> None:
        """Events may have been missed (the listener reconnected): flush and wake everyone."""
        for callback in self._on_reset:
            callback()
        for watchers in self._watchers.values():
            for signal in watchers:
                signal.set()
