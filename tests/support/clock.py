"""The one clock tests move by hand instead of sleeping, and its fixture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


class ManualClock:
    """Wall time that moves only when the test says so; starts now unless given `start`.

    `clock()` reads a tz-aware datetime and `clock.seconds()` the same instant as a Unix time,
    for code that counts seconds. Each reading moves time on by `step` (none unless set)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = datetime.now(UTC) if start is None else start
        self.step = timedelta(0)

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current

    def seconds(self) -> float:
        """The current time as a Unix timestamp."""
        return self().timestamp()

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    """A clock of its own for each test, starting at the real time."""
    return ManualClock()
