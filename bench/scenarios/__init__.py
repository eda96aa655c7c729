"""One module per scenario; each takes a Plan and a Stack and returns rows and notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.report import Row

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes and bounds of one run (full or --quick)."""

    quick: bool
    big_bytes: int
    s3_bytes: int
    load_seconds: float
    range_limit: int
    full_gets: int
    s3_gets: int
    slow_seconds: float
    concurrent_seconds: float
    graphql_limit: int
    upload_bytes: int = 1024 * MIB
    upload_seconds: float = 600.0

    @classmethod
    def make(cls, quick: bool) -> Plan:
        """The full plan, or the short smoke-run plan."""
        if quick:
            return cls(True, 64 * MIB, 16 * MIB, 2.0, 3000, 2, 2, 2.0, 3.0, 200, 128 * MIB, 300.0)
        return cls(False, 512 * MIB, 64 * MIB, 6.0, 40000, 3, 5, 8.0, 12.0, 2000)


@dataclass
class Outcome:
    """What a scenario adds to the report."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
