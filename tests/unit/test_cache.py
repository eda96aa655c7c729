"""TtlCache: expiry by an injected clock, bounded size, explicit discard."""

from __future__ import annotations

import pytest

from media.service.cache import TtlCache
from tests.support.clock import ManualClock


def test_entries_expire_after_the_ttl() -> None:
    clock = ManualClock()
    cache: TtlCache[str, int] = TtlCache(2.0, 10, clock.seconds)
    cache.put("a", 1)
    clock.advance(1.9)
    assert cache.get("a") == 1
    clock.advance(0.2)
    assert cache.get("a") is None


def test_oldest_entries_go_first_past_the_bound() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, 3, ManualClock().seconds)
    for key in range(5):
        cache.put(key, key)
    assert [cache.get(key) for key in range(5)] == [None, None, 2, 3, 4]


def test_discard_and_disabled() -> None:
    cache: TtlCache[str, int] = TtlCache(5.0, 3, ManualClock().seconds)
    cache.put("a", 1)
    cache.discard("a")
    assert cache.get("a") is None
    off: TtlCache[str, int] = TtlCache(0.0, 3, ManualClock().seconds)
    off.put("a", 1)
    assert not off.enabled and off.get("a") is None


async def test_concurrent_misses_share_one_load() -> None:
    import anyio
    import anyio.lowlevel

    cache: TtlCache[str, int] = TtlCache(5.0, 10, ManualClock().seconds)
    calls = 0
    release = anyio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 7

    results: list[int | None] = []

    started: list[bool] = []

    async def ask() -> None:
        started.append(True)
        results.append(await cache.get_or_load("k", load))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(ask)
        while calls == 0 or len(started) < 20:  # every caller has asked and is waiting
            await anyio.lowlevel.checkpoint()
        release.set()
    assert results == [7] * 20 and calls == 1
    assert await cache.get_or_load("k", load) == 7 and calls == 1


async def test_a_failed_load_lets_the_next_caller_try() -> None:
    cache: TtlCache[str, int] = TtlCache(5.0, 10, ManualClock().seconds)

    async def broken() -> int:
        raise RuntimeError("down")

    async def works() -> int:
        return 3

    with pytest.raises(RuntimeError):
        await cache.get_or_load("k", broken)
    assert await cache.get_or_load("k", works) == 3


async def test_a_discard_during_a_load_keeps_the_stale_value_out() -> None:
    import anyio

    cache: TtlCache[str, int] = TtlCache(5.0, 10, ManualClock().seconds)
    release = anyio.Event()
    asked = anyio.Event()

    async def stale() -> int:
        asked.set()
        await release.wait()
        return 1  # read before the revocation committed

    async with anyio.create_task_group() as group:
        group.start_soon(cache.get_or_load, "k", stale)
        await asked.wait()
        cache.discard("k")  # the revocation lands while the read is in flight
        release.set()
    assert cache.get("k") is None
