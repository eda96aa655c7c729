"""A real browser: Debian's chromium, driven by Playwright, plays and seeks a signed stream URL."""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, unavailable
from tests.support.app import RunningService, embedded_service_at
from tests.support.flow import upload_file
from tests.support.media_files import make_mp4
from tests.support.phone_media import make_clip, rotate_mp4

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PAGE = """<!doctype html><html><body>
<video id="v" crossorigin="anonymous" muted playsinline preload="metadata" src="{src}"></video>
</body></html>"""


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    return _without_realtime(str(path))


@functools.cache
def _without_realtime(chromium: str) -> str:
    """Run as root, Chromium raises media threads to SCHED_FIFO (it holds CAP_SYS_NICE), and a
    real-time thread that spins starves every other process of the machine, the test run
    included. Started without that capability, it keeps ordinary scheduling."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return chromium
    wrapper = Path(tempfile.mkdtemp(prefix="chromium-")) / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec {setpriv} --bounding-set=-sys_nice {chromium} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def seek_three_quarters(page: Any, video: str) -> None:
    """Seek the `<video>` the JavaScript expression `video` names to three quarters of its
    length, then wait until it plays on past that point (the ranges a seek needs were served)."""
    page.evaluate(
        f"""() => new Promise(done => {{ const v = {video};
        v.addEventListener('seeked', () => done(), {{once: true}});
        v.currentTime = v.duration * 0.75; }})"""
    )
    page.wait_for_function(
        f"() => (v => v.currentTime > v.duration * 0.75 + 0.3)({video})", timeout=20_000
    )


@contextlib.contextmanager
def site(files: Mapping[str, tuple[str, bytes]]) -> Iterator[str]:
    """Serve `files` (path -> content type, body) from their own loopback origin."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content_type, body = files.get(self.path, ("text/plain", b""))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # "localhost" is another origin than the service's 127.0.0.1.
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["plaintext", "encrypted"])
def playback_service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningService]:
    """The embedded default, storing in plaintext, then with encryption at rest."""
    environ = {}
    if request.param == "encrypted":
        environ["MEDIA_ENCRYPTION_KEYS"] = "k1:" + base64.b64encode(os.urandom(32)).decode()
    with embedded_service_at(tmp_path / "data", **environ) as service:
        yield service


def play_and_seek(
    stream_url: str, seconds: float
) -> tuple[list[tuple[str, int, str]], int, dict[str, int]]:
    """Play in chromium and seek to 75 %: the responses, how many came before the seek, the size."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    statuses: list[tuple[str, int, str]] = []
    files = {"/": ("text/html; charset=utf-8", PAGE.format(src=stream_url).encode())}
    with site(files) as origin, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "response",
                lambda r: (
                    statuses.append((r.url, r.status, r.request.headers.get("range", "")))
                    if "/media/" in r.url
                    else None
                ),
            )
            page.goto(origin)
            page.wait_for_function("document.getElementById('v').readyState >= 1", timeout=20_000)
            duration = page.evaluate("document.getElementById('v').duration")
            assert abs(duration - seconds) < 0.3
            size = page.evaluate(
                "(v => ({width: v.videoWidth, height: v.videoHeight}))"
                "(document.getElementById('v'))"
            )
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function("document.getElementById('v').currentTime > 0.2", timeout=20_000)
            before_seek = len(statuses)
            seek_three_quarters(page, "document.getElementById('v')")
            error = page.evaluate(
                "document.getElementById('v').error && document.getElementById('v').error.code"
            )
            assert error is None
        finally:
            browser.close()
    assert statuses, "the browser fetched nothing from the stream URL"
    assert all(status in (200, 206) for _, status, _ in statuses), statuses
    return statuses, before_seek, size


def test_video_plays_and_seeks(playback_service: RunningService, tmp_path: Path) -> None:
    source = make_mp4(tmp_path / "film.mp4", seconds=6.0, size=(320, 240), faststart=False)
    media = upload_file(playback_service, playback_service.token("viewer"), source, "video/mp4")
    statuses, before_seek, _ = play_and_seek(media["streamUrl"]["url"], 6.0)
    after_seek = statuses[before_seek:]
    # Either the seek needed new bytes (answered 206), or the whole small file was already buffered.
    assert all(status == 206 for _, status, _ in after_seek), after_seek
    assert any(status == 206 for _, status, _ in statuses), statuses


def test_hevc_upload_plays_and_seeks(embedded_service: RunningService, tmp_path: Path) -> None:
    # HEVC in MP4 plays in few browsers; its stream is the H.264 rendition, a portrait one here.
    source = rotate_mp4(
        make_clip(tmp_path / "phone.mp4", codec="libx265", size=(128, 96), frames=72), 90
    )
    media = upload_file(embedded_service, embedded_service.token("viewer"), source, "video/mp4")
    assert (media["width"], media["height"]) == (96, 128)
    statuses, _, size = play_and_seek(media["streamUrl"]["url"], 3.0)
    assert size == {"width": 96, "height": 128}
    assert any(status == 206 for _, status, _ in statuses), statuses
