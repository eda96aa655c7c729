"""Child processes of a run: start in their own session, read CPU and memory, stop for sure."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_GRACE_S = 10.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0  # exited meanwhile
    # Fields after the command name start at field 3; utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def _process_tree(root: int) -> list[int]:
    """`root` and every live descendant, from /proc/<pid>/task/<tid>/children."""
    found = [root]
    index = 0
    while index < len(found) and index < 1000:
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{found[index]}/task").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    found.extend(int(pid) for pid in (task / "children").read_text().split())
        index += 1
    return found


@dataclass
class Proc:
    """One started child process (leader of its own process group) and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and its live descendants (all threads) so far.

        Descendants count for servers that fork workers (`serve --workers N`, granian)."""
        return sum(_cpu_ticks(pid) for pid in _process_tree(self.pid)) / CLOCK_TICKS

    def memory_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak) from /proc/<pid>/status, in KiB."""
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
        return values

    def reset_peak(self) -> None:
        """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def tail(self, lines: int = 20) -> str:
        """The end of the process log, for error messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL after a grace period."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=STOP_GRACE_S)


@dataclass
class Processes:
    """Every child of a run, stopped in reverse order by close()."""

    logs: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Proc:
        """Start `argv` in a new session, output to a log file under `logs`."""
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=dict(env or os.environ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name=name, popen=popen, log=log)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        """Stop every process, newest first."""
        while self.started:
            self.started.pop().stop()


def wait_http(proc: Proc, url: str, timeout_s: float = 60.0) -> None:
    """Poll `url` until it answers below 500; raise with the log tail if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        # Streamed and closed unread: a readiness probe must not pull a whole object.
        with contextlib.suppress(httpx.HTTPError), httpx.stream("GET", url, timeout=2) as response:
            if response.status_code < 500:
                return
        time.sleep(0.05)  # polling a starting process; not a timing measurement
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout_s} s:\n{proc.tail()}")


def run_json(argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None) -> str:
    """Run a load process to completion and return its stdout; raise on failure."""
    popen = subprocess.Popen(
        list(argv),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = popen.communicate(timeout=timeout_s)
    finally:
        # Interrupted or timed out: the load process must not outlive the run (nor stay a zombie).
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
    if popen.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({popen.returncode}): {err.decode()[-2000:]}")
    return out.decode()


def python(*args: str) -> list[str]:
    """An argv running this interpreter."""
    return [sys.executable, *args]


def child_json(script: str, *args: str, timeout_s: float) -> dict[str, Any]:
    """Run `script` (`python -c`) with `args` in a fresh child that imports this checkout; its
    last line of output, as JSON (what a measurement in a process of its own reports)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = run_json(python("-c", script, *args), timeout_s, env=env)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@contextlib.contextmanager
def rss_sampler(proc: Proc, interval_s: float = 0.02) -> Iterator[list[int]]:
    """Sample VmRSS (KiB) in a thread while the block runs; the list fills as it goes."""
    samples: list[int] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            with contextlib.suppress(OSError, KeyError):
                samples.append(proc.memory_kib()["VmRSS"])

    thread = threading.Thread(target=loop, name=f"rss-{proc.name}", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
