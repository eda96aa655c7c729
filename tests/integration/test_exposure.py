"""What production keeps to itself: GraphiQL, introspection and field-name suggestions."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.app import RunningService, embedded_service_at

TYPO = "{ me { subjec } }"
INTROSPECTION = [
    "{ __schema { types { name } } }",
    '{ __type(name: "Media") { fields { name } } }',
    "query { me { subject } __schema { queryType { name } } }",
]
PAGE = {"Accept": "text/html"}


@pytest.fixture(scope="module", params=["open", "closed"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    closed = request.param == "closed"
    flags = {"MEDIA_GRAPHIQL": "false", "MEDIA_INTROSPECTION": "false"} if closed else {}
    with embedded_service_at(tmp_path_factory.mktemp("exposure"), **flags) as running:
        yield running


def closed(service: RunningService) -> bool:
    return not service.settings.introspection


def test_graphiql_page_and_assets(service: RunningService) -> None:
    page = httpx.get(f"{service.url}/graphql", headers=PAGE, timeout=30)
    asset = httpx.get(f"{service.url}/graphql/static/graphiql-init.js", timeout=30)
    if closed(service):
        assert "<html" not in page.text.lower()
        assert asset.status_code == 404
    else:
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert asset.status_code == 200


@pytest.mark.parametrize("query", INTROSPECTION)
def test_introspection(service: RunningService, query: str) -> None:
    body = service.graphql(query)
    if closed(service):
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "data" not in body or body["data"] is None
    else:
        assert "errors" not in body, body


def test_typename_stays_available(service: RunningService) -> None:
    assert service.graphql("{ __typename }") == {"data": {"__typename": "Query"}}


def test_validation_errors_suggest_names_only_when_open(service: RunningService) -> None:
    message = service.graphql(TYPO)["errors"][0]["message"]
    assert "subjec" in message
    assert ("Did you mean" in message) is not closed(service)
    assert ("'subject'" in message) is not closed(service)
