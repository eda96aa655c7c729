"""A real browser plays the HLS ladder: Debian's chromium runs hls.js (vendored, served from
another loopback origin than the service), plays the master playlist, is made to switch
rendition through hls.js' API, and seeks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import CHROMIUM_ARGS, chromium_path, seek_three_quarters, site
from tests.support.app import RunningService, embedded_service_at
from tests.support.flow import upload_file
from tests.support.media_files import make_mp4
from tests.support.uploads import subject

pytestmark = pytest.mark.browser

HLS_JS = Path(__file__).parent / "assets" / "hls.js-1.7.4" / "hls.min.js"
SECONDS = 16.0
HLS_URL = """query($id: ID!) { media(id: $id) { hlsUrl { url } } }"""
# The player records what it did; the test reads `window.seen` and drives `window.hls`.
PAGE = """<!doctype html><html><body>
<video id="v" muted playsinline></video>
<script>{player}</script>
<script>
window.seen = [];
const video = document.getElementById('v');
const hls = new Hls({{startLevel: 0, capLevelToPlayerSize: false}});
hls.on(Hls.Events.MANIFEST_PARSED, (e, d) => seen.push(['manifest', d.levels.length]));
hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => seen.push(['switched', d.level]));
hls.on(Hls.Events.FRAG_LOADED, (e, d) => seen.push(['fragment', d.frag.level, d.frag.sn]));
hls.on(Hls.Events.ERROR, (e, d) => seen.push(['error', d.details, d.fatal]));
hls.loadSource({master!r});
hls.attachMedia(video);
window.hls = hls;
</script>
</body></html>"""


@pytest.fixture
def hls_service(tmp_path: Path) -> Iterator[RunningService]:
    environ = {"MEDIA_HLS": "true", "MEDIA_HLS_LADDER": "144,240"}
    with embedded_service_at(tmp_path / "data", **environ) as service:
        yield service


def _events(page: Any, kind: str) -> list[list[Any]]:
    return [event for event in page.evaluate("window.seen") if event[0] == kind]


def test_hls_js_plays_switches_rendition_and_seeks(hls_service: RunningService, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    token = hls_service.token(subject())
    clip = make_mp4(tmp_path / "clip.mp4", seconds=SECONDS, fps=5, size=(320, 240), faststart=True)
    media = upload_file(hls_service, token, clip, "video/mp4", settle_timeout_s=60)
    master = hls_service.graphql(HLS_URL, {"id": media["id"]}, token=token)
    master_url = master["data"]["media"]["hlsUrl"]["url"]
    html = PAGE.format(player=HLS_JS.read_text(encoding="utf-8"), master=master_url)
    answers: list[tuple[str, int]] = []
    executable = chromium_path()
    with (
        site({"/": ("text/html; charset=utf-8", html.encode())}) as origin,
        sync_playwright() as pw,
    ):
        assert not origin.startswith(hls_service.url)  # another origin: CORS is exercised
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "response",
                lambda r: answers.append((r.url, r.status)) if "/hls/" in r.url else None,
            )
            page.goto(origin)
            page.wait_for_function("window.hls && window.hls.levels.length === 2", timeout=20_000)
            heights = page.evaluate("window.hls.levels.map(level => level.height)")
            assert heights == [144, 240]
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function("document.getElementById('v').currentTime > 0.5", timeout=20_000)
            assert page.evaluate("document.getElementById('v').videoHeight") == 144
            # Force the other rendition: hls.js flushes and loads it from the next segment.
            page.evaluate("window.hls.currentLevel = 1")
            page.wait_for_function(
                "window.seen.some(e => e[0] === 'switched' && e[1] === 1)", timeout=20_000
            )
            page.wait_for_function(
                "document.getElementById('v').videoHeight === 240", timeout=20_000
            )
            seek_three_quarters(page, "document.getElementById('v')")
            duration = page.evaluate("document.getElementById('v').duration")
            errors = _events(page, "error")
            fragments = _events(page, "fragment")
        finally:
            browser.close()
    assert abs(duration - SECONDS) < 0.5
    assert not [error for error in errors if error[2]], errors  # nothing fatal
    assert {fragment[1] for fragment in fragments} == {0, 1}  # both renditions' segments
    # The last quarter's segment came after the seek, fetched straight away.
    assert any(fragment[2] == 4 for fragment in fragments), fragments
    assert answers and all(status in (200, 206) for _, status in answers), answers
    names = {url.split("/hls/", 1)[1].split("/", 1)[1] for url, _ in answers}
    assert {"master.m3u8", "144p/index.m3u8", "240p/index.m3u8", "240p/init.mp4"} <= names
