"""Debian's chromium opens a share link's page: the password form works, the video plays and
seeks, and the page passes its own CSP (no violation, no console error)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import CHROMIUM_ARGS, chromium_path, seek_three_quarters
from tests.support.clock import ManualClock
from tests.support.flow import upload_file
from tests.support.media_files import MediaFiles, make_mp4
from tests.support.sharing import clocked_embedded, create_link

pytestmark = pytest.mark.browser

# Runs before any page script (and outside the page's CSP): records every CSP violation.
WATCH_CSP = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e =>
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def test_chromium_plays_and_seeks_the_shared_video(tmp_path: Path, media_files: MediaFiles) -> None:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    source = make_mp4(tmp_path / "film.mp4", seconds=6.0, size=(320, 240), faststart=False)
    with clocked_embedded(tmp_path / "data", ManualClock()) as service:
        owner = service.token(f"user-{uuid.uuid4().hex[:12]}")
        video = upload_file(service, owner, source, "video/mp4")
        image = upload_file(service, owner, media_files.png, "image/png")
        link = create_link(service, owner, [video["id"], image["id"]], password="pw", title="Film")
        console: list[str] = []
        statuses: list[tuple[str, int]] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.add_init_script(WATCH_CSP)
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                page.on("response", lambda r: statuses.append((r.url, r.status)))
                page.goto(link["url"])
                page.fill("#password", "pw")
                with page.expect_navigation():
                    page.click("button[type=submit]")
                assert page.title() == "Film"
                _play_and_seek(page)
                image_ok = page.evaluate(
                    "(() => { const i = document.querySelector('img');"
                    " return i.complete && i.naturalWidth === 640; })()"
                )
                assert image_ok
                violations = page.evaluate("window.__violations")
            finally:
                browser.close()
    assert violations == []
    assert [line for line in console if line.startswith(("error", "pageerror"))] == []
    # Every request of the page (page, form answer, media) succeeded; the video was ranged.
    assert statuses and all(status in (200, 206) for _, status in statuses), statuses
    media = [status for url, status in statuses if "/media/" in url]
    assert 206 in media


def _play_and_seek(page: Any) -> None:
    # Predicates as functions: a string predicate would be eval'd, which the page's CSP forbids.
    page.wait_for_function("() => document.querySelector('video').readyState >= 1", timeout=20_000)
    duration = page.evaluate("document.querySelector('video').duration")
    assert abs(duration - 6.0) < 0.3
    page.evaluate("document.querySelector('video').muted = true")
    page.evaluate("document.querySelector('video').play()")
    page.wait_for_function(
        "() => document.querySelector('video').currentTime > 0.2", timeout=20_000
    )
    seek_three_quarters(page, "document.querySelector('video')")
    assert page.evaluate("document.querySelector('video').error") is None
