"""`python -m bench.profiled OUT serve ...`: the service with cProfile on every thread.

py-spy and pyinstrument are not installed here, so the byte path is profiled in-process. SIGUSR1
starts profiling (after start-up, so imports stay out); threads started later (anyio workers,
aiosqlite connections) get their own profiler; SIGTERM stops the server and writes merged stats.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from server.cli import main as service_main

_PROFILERS: list[cProfile.Profile] = []


def summary(stats_path: Path, top: int = 30) -> str:
    """The functions with the most own time, then the most cumulative time in our packages."""
    out = io.StringIO()
    stats = pstats.Stats(str(stats_path), stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(r"(streaming|media)/", top)
    return out.getvalue()


def _thread_hook(frame: FrameType, event: str, arg: Any) -> None:
    # First event in a new thread: give it its own profiler, which replaces this hook.
    profiler = cProfile.Profile()
    _PROFILERS.append(profiler)
    profiler.enable()


def _start(signum: int, frame: FrameType | None) -> None:
    if not _PROFILERS:
        threading.setprofile(_thread_hook)
        profiler = cProfile.Profile()
        _PROFILERS.append(profiler)
        profiler.enable()


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    """Serve until stopped, then dump the merged stats of every profiled thread."""
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    signal.signal(signal.SIGUSR1, _start)
    # uvicorn re-raises the signal that stopped it once it has shut down; exit through Python
    # (not the default action) so the stats still get written.
    signal.signal(signal.SIGTERM, _exit)
    try:
        service_main(argv)
    finally:
        threading.setprofile(None)
        for profiler in _PROFILERS:
            profiler.disable()
        if _PROFILERS:
            stats = pstats.Stats(_PROFILERS[0])
            for profiler in _PROFILERS[1:]:
                stats.add(profiler)
            stats.dump_stats(str(out))


if __name__ == "__main__":
    main()
