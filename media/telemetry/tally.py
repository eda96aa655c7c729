"""Cheap recording on hot paths: counts add up in plain attributes and reach Prometheus on flush.

A prometheus-client `inc()` takes a lock (and under PROMETHEUS_MULTIPROC_DIR writes a file
mapping); a histogram `observe()` takes two. Per streamed range that was about a tenth of the
request's CPU. A tally adds to an int instead; `flush_all()` moves the sums into the metrics before
every scrape and once a second (so other processes' scrapes see them too).

Tallies are recorded from the event loop thread of the process (one loop per server process);
processing stages, which run in worker threads, use prometheus-client directly.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from prometheus_client import Counter, Histogram

_TALLIES: dict[int, CounterTally | HistogramTally] = {}


class CounterTally:
    """Pending increments of one counter child."""

    __slots__ = ("child", "pending")

    def __init__(self, child: Counter) -> None:
        self.child = child
        self.pending = 0.0

    def add(self, amount: float = 1.0) -> None:
        """Count `amount` (flushed later)."""
        self.pending += amount

    def flush(self) -> None:
        """Move what is pending into the counter."""
        amount = self.pending
        if amount:
            self.pending -= amount
            self.child.inc(amount)


class HistogramTally:
    """Pending observations of one histogram child, already sorted into its buckets."""

    __slots__ = ("bounds", "buckets", "child", "counts", "total")

    def __init__(self, child: Histogram) -> None:
        self.child = child
        # prometheus-client's own bucket bounds and values (ending with +Inf); its observe() files
        # a value under the first bound it does not exceed, which bisect_left finds.
        self.bounds: list[float] = list(child._upper_bounds)
        self.buckets: list[Any] = child._buckets
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, amount: float) -> None:
        """Record one observation (flushed later)."""
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.total += amount

    def flush(self) -> None:
        """Move what is pending into the histogram."""
        total = self.total
        if not total and not any(self.counts):
            return
        self.total -= total
        for index, count in enumerate(self.counts):
            if count:
                self.counts[index] -= count
                self.buckets[index].inc(count)
        self.child._sum.inc(total)


def counter_tally(child: Counter) -> CounterTally:
    """The one tally of a counter child."""
    tally = _TALLIES.get(id(child))
    if not isinstance(tally, CounterTally):
        tally = _TALLIES[id(child)] = CounterTally(child)
    return tally


def histogram_tally(child: Histogram) -> HistogramTally:
    """The one tally of a histogram child."""
    tally = _TALLIES.get(id(child))
    if not isinstance(tally, HistogramTally):
        tally = _TALLIES[id(child)] = HistogramTally(child)
    return tally


def flush_all() -> None:
    """Move every pending count into its metric."""
    for tally in list(_TALLIES.values()):
        tally.flush()
