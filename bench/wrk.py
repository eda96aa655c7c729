"""Load from wrk (a separate process), bounded in requests and time, with results as JSON."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.procs import run_json

# Each thread stops after its share of `limit` requests; wrk's -d bounds the time.
_COMMON = """\
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
   ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
   return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local limit = tonumber(os.getenv("BENCH_LIMIT_PER_THREAD") or "1000000000")
local count = 0
t0, t1 = nil, nil
function response(status, headers, body)
   if not t0 then t0 = first_sent end
   count = count + 1
   if count >= limit then
      t1 = now_us()
      wrk.thread:stop()
   end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
   -- wrk keeps its clock running until -d even when every thread stopped early, so the
   -- elapsed time is taken from the threads themselves when all of them reached the limit.
   local elapsed = 0
   for _, thread in ipairs(threads) do
      local a, b = thread:get("t0"), thread:get("t1")
      if not a or not b then elapsed = summary.duration break end
      elapsed = math.max(elapsed, b - a)
   end
   io.write(string.format(
      '\\nBENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, '
      .. '"p99_us": %d, "errors": %d}\\n',
      summary.requests, elapsed, summary.bytes, latency:percentile(50),
      latency:percentile(99), summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""

RANGES_SCRIPT = (
    _COMMON
    + """\
local requests = {}
function init(args)
   local size, span = tonumber(args[1]), tonumber(args[2])
   math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
   for i = 1, 1000 do
      local start = math.random(0, size - span)
      requests[i] = wrk.format("GET", nil, {Range = "bytes=" .. start .. "-" .. (start + span - 1)})
   end
end
local index = 0
function request()
   if not first_sent then first_sent = now_us() end
   index = index % 1000 + 1
   return requests[index]
end
"""
)

POST_SCRIPT = (
    _COMMON
    + """\
local prepared
function init(args)
   local file = io.open(args[1], "r")
   local body = file:read("*a")
   file:close()
   prepared = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. args[2]}, body)
end
function request()
   if not first_sent then first_sent = now_us() end
   return prepared
end
"""
)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run measured."""

    requests: int
    seconds: float
    bytes: int
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_binary() -> str | None:
    """The wrk executable, or None."""
    return shutil.which("wrk")


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    limit: int,
    seconds: float,
    script_args: tuple[str, ...] = (),
) -> LoadResult:
    """Run wrk against `url` until `limit` requests or `seconds` pass, whichever comes first."""
    binary = wrk_binary()
    assert binary is not None
    threads = min(2, connections)
    per_thread = max(1, limit // threads)
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1", "loopback only"
    argv = [
        "env",
        f"BENCH_LIMIT_PER_THREAD={per_thread}",
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        *script_args,
    ]
    out = run_json(argv, timeout_s=seconds + 30)
    line = next(x for x in out.splitlines() if x.startswith("BENCHJSON "))
    data = json.loads(line.removeprefix("BENCHJSON "))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        bytes=data["bytes"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["errors"],
    )


def write_scripts(folder: Path) -> tuple[Path, Path]:
    """Write the range and POST scripts; return their paths."""
    ranges, post = folder / "ranges.lua", folder / "post.lua"
    ranges.write_text(RANGES_SCRIPT)
    post.write_text(POST_SCRIPT)
    return ranges, post
