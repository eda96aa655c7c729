"""TtlCache: expiry by an injected clock, bounded size, explicit discard."""

from __future__ import annotations

from media.service.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(2.0, 10, clock)
    cache.put("a", 1)
    clock.now += 1.9
    assert cache.get("a") == 1
    clock.now += 0.2
    assert cache.get("a") is None


def test_oldest_entries_go_first_past_the_bound() -> None:
    cache: TtlCache[int, int] = TtlCache(60.0, 3, Clock())
    for key in range(5):
        cache.put(key, key)
    assert [cache.get(key) for key in range(5)] == [None, None, 2, 3, 4]


def test_discard_and_disabled() -> None:
    cache: TtlCache[str, int] = TtlCache(5.0, 3, Clock())
    cache.put("a", 1)
    cache.discard("a")
    assert cache.get("a") is None
    off: TtlCache[str, int] = TtlCache(0.0, 3, Clock())
    off.put("a", 1)
    assert not off.enabled and off.get("a") is None
