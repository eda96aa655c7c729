"""The page of a share link over real HTTP: media, headers, Open Graph, the password form and its
guards, 404/410, and that the HTML names nothing outside the service."""

from __future__ import annotations

import html
import logging
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from markupsafe import escape

from media.service.shares import ATTEMPT_WINDOW_S, MAX_FAILED_ATTEMPTS
from tests.support.app import RunningService
from tests.support.clock import ManualClock
from tests.support.documents import REVOKE_LINK
from tests.support.flow import upload_file
from tests.support.media_files import MediaFiles
from tests.support.sharing import clocked_embedded, create_link, ok

XSS_TITLE = 'Trip <script>alert("x")</script> & "friends"'


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, clock: ManualClock
) -> Iterator[RunningService]:
    with clocked_embedded(tmp_path_factory.mktemp("share-page"), clock) as running:
        yield running


@pytest.fixture(scope="module")
def owner(service: RunningService) -> str:
    return service.token(f"user-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def pair(service: RunningService, owner: str, media_files: MediaFiles) -> list[dict[str, Any]]:
    return [
        upload_file(service, owner, media_files.mp4_faststart, "video/mp4"),
        upload_file(service, owner, media_files.png, "image/png"),
    ]


def page_url(service: RunningService, link: dict[str, Any]) -> str:
    return f"{service.url}/s/{link['token']}"


def attribute_urls(text: str) -> list[str]:
    """Every URL-valued attribute of the HTML (src, href, poster, action, content)."""
    found = re.findall(r'\b(?:src|href|poster|action|content)="([^"]*)"', text)
    values = [html.unescape(value) for value in found]
    return [value for value in values if re.match(r"(?:[A-Za-z][A-Za-z0-9+.-]*:|/)", value)]


def meta(text: str, name: str) -> str | None:
    match = re.search(rf'<meta (?:property|name)="{re.escape(name)}" content="([^"]*)"', text)
    return html.unescape(match.group(1)) if match else None


def test_the_page_shows_the_media_with_strict_headers(
    service: RunningService, owner: str, pair: list[dict[str, Any]]
) -> None:
    link = create_link(service, owner, [m["id"] for m in pair], title=XSS_TITLE)
    response = httpx.get(page_url(service, link), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    # Headers: no script at all, one nonce for the one inline style, nothing from elsewhere.
    csp = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    nonce = re.search(r'<style nonce="([^"]+)">', text)
    assert nonce is not None
    assert directives == {
        "default-src": "'none'",
        "style-src": f"'nonce-{nonce.group(1)}'",
        "img-src": service.url,
        "media-src": service.url,
        "form-action": "'self'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
    }
    assert "<script" not in text.replace("&lt;script&gt;", "")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-robots-tag"] == "noindex, nofollow"
    assert response.headers["cache-control"] == "no-store"
    assert '<meta name="robots" content="noindex, nofollow">' in text
    # The title is escaped wherever it appears, and is the Open Graph title.
    assert XSS_TITLE not in text and str(escape(XSS_TITLE)) in text
    assert meta(text, "og:title") == XSS_TITLE
    assert meta(text, "og:type") == "video.other"
    assert meta(text, "og:url") == page_url(service, link)
    image = meta(text, "og:image")
    assert image is not None and image.startswith(f"{service.url}/media/")
    thumb = httpx.get(image, timeout=10)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    # Every URL in the page is this service's own.
    urls = attribute_urls(text)
    assert len(urls) >= 5 and all(url.startswith(service.url) for url in urls), urls
    anywhere = re.findall(r"(?:https?:)?//[^\s\"'<>]+", text)
    assert anywhere and all(url.startswith(service.url) for url in anywhere), anywhere
    video = re.search(r'<video controls[^>]* src="([^"]+)"', text)
    assert video is not None
    ranged = httpx.get(html.unescape(video.group(1)), headers={"Range": "bytes=0-9"}, timeout=10)
    assert ranged.status_code == 206
    assert re.search(r'<img src="[^"]+" alt="Photo 2" width="640" height="480">', text)
    assert "download" not in text.lower().replace("no-referrer", "")
    assert pair[0]["name"] not in text  # the owner's file names stay private


def test_the_icon_is_served_under_the_page_policy(service: RunningService) -> None:
    icon = httpx.get(f"{service.url}/s/icon.svg", timeout=10)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.headers["content-security-policy"] == "default-src 'none'"
    assert b"<script" not in icon.content


def test_page_views_count_and_downloads_show_when_allowed(
    service: RunningService, owner: str, pair: list[dict[str, Any]]
) -> None:
    link = create_link(service, owner, [pair[1]["id"]], allowDownload=True)
    for _ in range(2):
        text = httpx.get(page_url(service, link), timeout=10).text
    match = re.search(r'<a href="([^"]+)" download>Download</a>', text)
    assert match is not None
    download = httpx.get(html.unescape(match.group(1)), timeout=10)
    assert download.headers["content-disposition"].startswith("attachment")
    query = "{ shareLinks(first: 50) { edges { node { id viewCount } } } }"
    edges = ok(service.graphql(query, token=owner))["shareLinks"]["edges"]
    assert {e["node"]["id"]: e["node"]["viewCount"] for e in edges}[link["id"]] == 2


def test_unusable_links_get_plain_404_and_410_pages(
    service: RunningService, clock: ManualClock, owner: str, pair: list[dict[str, Any]]
) -> None:
    revoked = create_link(service, owner, [pair[1]["id"]])
    assert ok(service.graphql(REVOKE_LINK, {"id": revoked["id"]}, token=owner))
    expiring = create_link(service, owner, [pair[1]["id"]], expiresIn=30)
    live = create_link(service, owner, [pair[1]["id"]])
    for token in ["A" * 59, "short", revoked["token"], live["token"][:16] + "A" * 43]:
        response = httpx.get(f"{service.url}/s/{token}", timeout=10)
        assert response.status_code == 404, token
        assert "does not exist" in response.text and "/media/" not in response.text
        assert response.headers["referrer-policy"] == "no-referrer"
    clock.advance(31)
    gone = httpx.get(page_url(service, expiring), timeout=10)
    assert gone.status_code == 410 and "expired" in gone.text and "/media/" not in gone.text


def _form_token(text: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', text)
    assert match is not None
    return html.unescape(match.group(1))


def _unlock(client: httpx.Client, url: str, password: str, **headers: str) -> httpx.Response:
    field = _form_token(client.get(url).text)
    return client.post(url, data={"password": password, "form_token": field}, headers=headers)


def test_the_password_form(
    service: RunningService, clock: ManualClock, owner: str, pair: list[dict[str, Any]]
) -> None:
    link = create_link(service, owner, [pair[0]["id"]], password="s3cret", title="Hidden title")
    url = page_url(service, link)
    with httpx.Client(timeout=10) as client:
        first = client.get(url)
        assert first.status_code == 200 and 'type="password"' in first.text
        # Before the password: no title, no preview image, no media URL.
        assert "Hidden title" not in first.text and "/media/" not in first.text
        assert meta(first.text, "og:image") is None
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert f"path=/s/{link['token']}".lower() in cookie
        wrong = _unlock(client, url, "nope")
        assert wrong.status_code == 403 and "Wrong password" in wrong.text
        assert "/media/" not in wrong.text
        right = _unlock(client, url, "s3cret")
        assert right.status_code == 200 and "Hidden title" in right.text
        assert re.search(r"<video controls", right.text)


def test_the_form_refuses_cross_site_and_forged_posts(
    service: RunningService, owner: str, pair: list[dict[str, Any]]
) -> None:
    link = create_link(service, owner, [pair[0]["id"]], password="s3cret")
    url = page_url(service, link)
    with httpx.Client(timeout=10) as client:
        field = _form_token(client.get(url).text)
        good = {"password": "s3cret", "form_token": field}
        refusals = [
            client.post(url, data=good, headers={"Origin": "http://evil.example"}),
            client.post(url, data=good, headers={"Sec-Fetch-Site": "cross-site"}),
            client.post(url, data=good, headers={"Origin": "null"}),
            client.post(url, data={**good, "form_token": field[:-3] + "abc"}),
            client.post(url, data={"password": "s3cret"}),
            httpx.post(url, data=good, timeout=10),  # no cookie: another browser
        ]
        for response in refusals:
            assert response.status_code == 403 and "/media/" not in response.text
        as_json = client.post(url, json=good)
        assert as_json.status_code == 415
        huge = client.post(url, data={**good, "password": "x" * 10_000})
        assert huge.status_code == 413
        # The field of another link is refused for this one.
        other = create_link(service, owner, [pair[0]["id"]], password="s3cret")
        other_field = _form_token(client.get(page_url(service, other)).text)
        crossed = client.post(url, data={**good, "form_token": other_field})
        assert crossed.status_code == 403
        same_origin = {"Origin": service.url, "Sec-Fetch-Site": "same-origin"}
        assert _unlock(client, url, "s3cret", **same_origin).status_code == 200
        # What a browser sends with its own form under Referrer-Policy: no-referrer.
        own_form = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
        assert _unlock(client, url, "s3cret", **own_form).status_code == 200


def test_wrong_passwords_are_rate_limited_per_link(
    service: RunningService, clock: ManualClock, owner: str, pair: list[dict[str, Any]]
) -> None:
    link = create_link(service, owner, [pair[1]["id"]], password="s3cret")
    neighbour = create_link(service, owner, [pair[1]["id"]], password="s3cret")
    url = page_url(service, link)
    clock.advance(ATTEMPT_WINDOW_S - clock.now.timestamp() % ATTEMPT_WINDOW_S + 1)
    with httpx.Client(timeout=10) as client:
        for _ in range(MAX_FAILED_ATTEMPTS):
            assert _unlock(client, url, "guess").status_code == 403
        locked = _unlock(client, url, "s3cret")
        assert locked.status_code == 429 and "Too many" in locked.text
        assert locked.headers["retry-after"].isdigit()
        # Another link is not locked by this one's attempts.
        assert _unlock(client, page_url(service, neighbour), "s3cret").status_code == 200
        clock.advance(ATTEMPT_WINDOW_S)
        assert _unlock(client, url, "s3cret").status_code == 200


def test_concurrent_guesses_cannot_pass_the_limit_together(
    service: RunningService, clock: ManualClock, owner: str, pair: list[dict[str, Any]]
) -> None:
    link = create_link(service, owner, [pair[1]["id"]], password="s3cret")
    url = page_url(service, link)
    clock.advance(ATTEMPT_WINDOW_S - clock.now.timestamp() % ATTEMPT_WINDOW_S + 1)
    with httpx.Client(timeout=30) as client:
        field = _form_token(client.get(url).text)
        guess = {"password": "guess", "form_token": field}
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda _: client.post(url, data=guess).status_code, range(12)))
    assert sorted(answers) == [403] * MAX_FAILED_ATTEMPTS + [429] * (12 - MAX_FAILED_ATTEMPTS)


def test_no_link_token_reaches_the_logs(
    service: RunningService,
    owner: str,
    pair: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = create_link(service, owner, [pair[0]["id"]], password="s3cret")
    url = page_url(service, link)
    logging.getLogger("aiosqlite").setLevel(logging.INFO)  # as `serve` does (configure_logging)
    with caplog.at_level(logging.DEBUG):
        with httpx.Client(timeout=10) as client:
            _unlock(client, url, "wrong")
            _unlock(client, url, "s3cret")
        httpx.get(f"{service.url}/s/{link['token']}x", timeout=10)
        httpx.post(url, content=b"x" * 10_000, timeout=10)
    # The test's own HTTP client (httpx, httpcore) logs its URLs; everything else is the server.
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(f"{record.getMessage()} {record.args}" for record in server)
    assert '"route":"/s/{token:str}"' in text or '"route":"/s/{token}"' in text, text[:2000]
    leaks = [r.name for r in server if link["token"][16:] in f"{r.getMessage()} {r.args}"]
    assert leaks == []
    assert logging.getLogger("aiosqlite").level == logging.INFO
