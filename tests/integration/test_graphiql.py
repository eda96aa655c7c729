"""GraphiQL at GET /graphql: the page and every asset come from the app itself, never a CDN."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import strawberry

from api.graphiql import STATIC_DIR
from tests.e2e.test_browser import chromium_path
from tests.support.app import RunningService, embedded_service_at

STRAWBERRY_PAGE = Path(strawberry.__file__).parent / "static" / "graphiql.html"
# Vendored file -> the name of the same file in Strawberry's template (unpkg URL suffix).
VENDORED = {
    "react-18.2.0.production.min.js": "react@18.2.0/umd/react.production.min.js",
    "react-dom-18.2.0.production.min.js": "react-dom@18.2.0/umd/react-dom.production.min.js",
    "js-cookie-3.0.5.min.js": "js-cookie@3.0.5/dist/js.cookie.min.js",
    "graphiql-3.8.3.min.js": "graphiql@3.8.3/graphiql.min.js",
    "graphiql-3.8.3.min.css": "graphiql@3.8.3/graphiql.min.css",
    "graphiql-plugin-explorer-1.0.2.umd.js": "@graphiql/plugin-explorer@1.0.2/dist/index.umd.js",
    "graphiql-plugin-explorer-1.0.2.css": "@graphiql/plugin-explorer@1.0.2/dist/style.css",
}
LICENSES = ["react", "react-dom", "js-cookie", "graphiql", "graphiql-plugin-explorer"]


class _References(HTMLParser):
    """Collects (url, integrity) of every script src and stylesheet href."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str | None]] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self._in_script = True
            if values.get("src"):
                self.found.append((str(values["src"]), values.get("integrity")))
        if tag == "link" and values.get("rel") == "stylesheet":
            self.found.append((str(values["href"]), values.get("integrity")))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One embedded service for the tests of this module that isolate themselves by subject."""
    with embedded_service_at(tmp_path_factory.mktemp("graphiql")) as running:
        yield running


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


def page(service: RunningService) -> httpx.Response:
    return httpx.get(f"{service.url}/graphql", headers={"Accept": "text/html"})


def test_browsers_get_the_graphiql_page(shared_service: RunningService) -> None:
    response = page(shared_service)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="graphiql"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"


def test_every_referenced_asset_is_served_locally_with_its_integrity(
    shared_service: RunningService,
) -> None:
    parser = _References()
    parser.feed(page(shared_service).text)
    assert parser.inline_scripts == 0  # the CSP forbids them
    assert len(parser.found) == len(VENDORED) + 1  # plus graphiql-init.js
    for url, integrity in parser.found:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, url  # same origin, no CDN
        assert parts.path.startswith("/graphql/static/")
        asset = httpx.get(f"{shared_service.url}{url}")
        assert asset.status_code == 200, url
        kind = "text/css" if parts.path.endswith(".css") else "text/javascript"
        assert asset.headers["content-type"] == f"{kind}; charset=utf-8", url
        assert "immutable" in asset.headers["cache-control"]
        assert "max-age=31536000" in asset.headers["cache-control"]
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert integrity == sri(asset.content), url


def test_nothing_on_the_page_points_off_site(shared_service: RunningService) -> None:
    text = page(shared_service).text
    urls = re.findall(r"https?://[^\s\"'<>]+", text)
    assert [url for url in urls if "www.w3.org/2000/svg" not in url] == []
    init = httpx.get(f"{shared_service.url}/graphql/static/graphiql-init.js").text
    assert re.findall(r"https?://", init) == []


def test_assets_revalidate_with_etags(shared_service: RunningService) -> None:
    url = f"{shared_service.url}/graphql/static/graphiql-3.8.3.min.css"
    first = httpx.get(url)
    again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize(
    "name", ["index.html", "LICENSE-react.txt", "SOURCES.txt", "..%2F__init__.py", "nope.js"]
)
def test_only_vendored_scripts_and_styles_are_served(
    shared_service: RunningService, name: str
) -> None:
    assert httpx.get(f"{shared_service.url}/graphql/static/{name}").status_code == 404


def test_vendored_files_are_the_ones_strawberry_pins() -> None:
    template = STRAWBERRY_PAGE.read_text()
    for name, upstream in VENDORED.items():
        match = re.search(rf'unpkg\.com/{re.escape(upstream)}"\s+integrity="([^"]+)"', template)
        assert match is not None, upstream
        assert sri((STATIC_DIR / name).read_bytes()) == match.group(1), name


@pytest.mark.parametrize("package", LICENSES)
def test_each_vendored_package_ships_its_license(package: str) -> None:
    text = (STATIC_DIR / f"LICENSE-{package}.txt").read_text()
    assert "Permission is hereby granted, free of charge" in text


def test_json_clients_still_get_graphql_on_get(shared_service: RunningService) -> None:
    response = httpx.get(
        f"{shared_service.url}/graphql",
        params={"query": "{ me { anonymous } }"},
        headers={"Accept": "application/json"},
    )
    assert response.json() == {"data": {"me": {"anonymous": True}}}


CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]


@pytest.mark.browser
def test_graphiql_runs_a_query_in_a_real_browser_without_internet(
    shared_service: RunningService,
) -> None:
    executable = chromium_path()
    from playwright.sync_api import Route, expect, sync_playwright

    origin = urlsplit(shared_service.url).netloc
    offsite: list[str] = []
    problems: list[str] = []

    def guard(route: Route) -> None:
        if urlsplit(route.request.url).netloc == origin:
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page()
            tab.route("**/*", guard)
            tab.on(
                "console", lambda msg: problems.append(msg.text) if msg.type == "error" else None
            )
            tab.on("pageerror", lambda exc: problems.append(str(exc)))
            tab.goto(f"{shared_service.url}/graphql", wait_until="networkidle")
            tab.locator(".graphiql-execute-button").click()
            # A locator, not a string predicate: the page's CSP refuses to eval one when the
            # wait has to poll (a loaded machine).
            expect(tab.locator(".result-window")).to_contain_text("scopes", timeout=15_000)
            result = tab.locator(".result-window").inner_text()
        finally:
            browser.close()
    assert '"anonymous"' in result
    assert offsite == []
    assert problems == []
