"""GraphQL over HTTP: methods, content types, status codes, authentication and limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from server.lifecycle import dev_issuer
from tests.support.app import RunningService, embedded_service_at
from tests.support.documents import SUBJECT

GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One embedded service for the tests of this module that isolate themselves by subject."""
    with embedded_service_at(tmp_path_factory.mktemp("graphql-http")) as running:
        yield running


def post(service: RunningService, body: Any, **headers: str) -> httpx.Response:
    """POST a JSON body to /graphql."""
    return httpx.post(f"{service.url}/graphql", json=body, headers=headers, timeout=30)


def raw(
    service: RunningService, content: bytes, content_type: str | None, **headers: str
) -> httpx.Response:
    """POST raw bytes with a chosen Content-Type."""
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(f"{service.url}/graphql", content=content, headers=headers, timeout=30)


def error_code(response: httpx.Response) -> str:
    """The code of the single error of a GraphQL-shaped body."""
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    return str(errors[0]["extensions"]["code"])


# -- methods and content types --------------------------------------------------------------------


def test_post_json_answers_json_with_a_request_id(shared_service: RunningService) -> None:
    response = post(shared_service, {"query": SUBJECT})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"data": {"me": {"subject": ""}}}
    assert len(response.headers["x-request-id"]) >= 8
    assert response.headers["cache-control"] == "no-store"


def test_get_runs_queries(shared_service: RunningService) -> None:
    response = httpx.get(
        f"{shared_service.url}/graphql",
        params={"query": SUBJECT},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"subject": ""}}}


def test_get_refuses_mutations_with_405(shared_service: RunningService) -> None:
    query = "mutation { deleteMedia(id: 1) }"
    response = httpx.get(
        f"{shared_service.url}/graphql",
        params={"query": query},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert error_code(response) == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"query=%7B+me+%7B+subject+%7D+%7D", "application/x-www-form-urlencoded"),
        (json.dumps({"query": SUBJECT}).encode(), "text/plain"),
        (json.dumps({"query": SUBJECT}).encode(), "text/plain;charset=UTF-8"),
        (
            b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--b--',
            "multipart/form-data; boundary=b",
        ),
        (json.dumps({"query": SUBJECT}).encode(), "application/graphql"),
        (json.dumps({"query": SUBJECT}).encode(), "application/jsonx"),
        (json.dumps({"query": SUBJECT}).encode(), None),
    ],
)
def test_non_json_bodies_are_refused_with_415(
    shared_service: RunningService, content: bytes, content_type: str | None
) -> None:
    response = raw(shared_service, content, content_type)
    assert response.status_code == 415
    assert error_code(response) == "UNSUPPORTED_MEDIA_TYPE"


def test_json_with_charset_is_accepted(shared_service: RunningService) -> None:
    response = raw(
        shared_service, json.dumps({"query": SUBJECT}).encode(), "application/json; charset=utf-8"
    )
    assert response.status_code == 200


def test_other_methods_are_refused(shared_service: RunningService) -> None:
    assert httpx.put(f"{shared_service.url}/graphql", json={"query": SUBJECT}).status_code == 405
    assert httpx.delete(f"{shared_service.url}/graphql").status_code == 405


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'"just a string"',
        b'{"query": 5}',
        b'{"query": "{ me { subject } }", "variables": []}',
        b"[]",
        # Nested deeper than the JSON parser recurses: still the client's error, never a 500.
        b"[" * 100_000 + b"]" * 100_000,
        b'{"query": "{ me { subject } }", "variables": {"v": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}",
    ],
)
def test_malformed_requests_are_400_with_a_graphql_body(
    shared_service: RunningService, content: bytes
) -> None:
    response = raw(shared_service, content, "application/json")
    assert response.status_code == 400
    assert error_code(response) == "BAD_REQUEST"


def test_batches_are_refused(shared_service: RunningService) -> None:
    response = post(shared_service, [{"query": SUBJECT}, {"query": SUBJECT}])
    assert response.status_code == 400


# -- application/graphql-response+json ------------------------------------------------------------


def test_graphql_response_media_type_is_negotiated(shared_service: RunningService) -> None:
    response = post(
        shared_service, {"query": SUBJECT}, Accept=f"{GRAPHQL_RESPONSE}, application/json;q=0.9"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "Accept" in response.headers["vary"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ me { subject }", "GRAPHQL_PARSE_FAILED"),
        ("{ me { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
def test_request_errors_are_400_for_graphql_response_json(
    shared_service: RunningService, query: str, code: str
) -> None:
    response = post(shared_service, {"query": query}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code


def test_variable_coercion_errors_are_400_for_graphql_response_json(
    shared_service: RunningService,
) -> None:
    query = "query($id: ID!) { media(id: $id) { id } }"
    response = post(shared_service, {"query": query, "variables": {}}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "data" not in response.json()


def test_request_errors_stay_200_for_plain_json(shared_service: RunningService) -> None:
    response = post(shared_service, {"query": "{ me { nope } }"}, Accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


def test_field_errors_are_200_with_data_for_graphql_response_json(
    shared_service: RunningService,
) -> None:
    query = 'mutation { deleteMedia(id: "AAAAAAAAAAAAAAAAAAAAAA") }'
    response = post(shared_service, {"query": query}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# -- authentication at the transport --------------------------------------------------------------


def assert_unauthenticated(response: httpx.Response, token: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token", error_description="'
    )
    assert error_code(response) == "UNAUTHENTICATED"
    assert token not in response.text


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c", "x" * 9_000],
)
def test_invalid_tokens_are_401_with_www_authenticate(
    any_service: RunningService, token: str
) -> None:
    response = post(any_service, {"query": SUBJECT}, Authorization=f"Bearer {token}")
    assert_unauthenticated(response, token)


def test_a_tampered_token_is_401(any_service: RunningService) -> None:
    token = any_service.token("mallory", ("user",))
    header, claims, signature = token.split(".")
    forged = f"{header}.{claims}.{signature[:-4]}AAAA"
    assert_unauthenticated(
        post(any_service, {"query": SUBJECT}, Authorization=f"Bearer {forged}"), forged
    )


def test_an_expired_token_is_401(shared_service: RunningService) -> None:
    settings = shared_service.settings
    issuer = dev_issuer(settings, str(settings.public_url))
    token = issuer.mint(
        "alice", ("user",), audience=settings.oidc_audience, ttl_s=60, now=time.time() - 3600
    )
    assert_unauthenticated(
        post(shared_service, {"query": SUBJECT}, Authorization=f"Bearer {token}"), token
    )


def test_a_non_bearer_scheme_is_401(shared_service: RunningService) -> None:
    response = post(shared_service, {"query": SUBJECT}, Authorization="Basic YWxpY2U6c2VjcmV0")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_valid_token_names_the_caller_over_get_too(any_service: RunningService) -> None:
    token = any_service.token("carol", ("user",))
    response = httpx.get(
        f"{any_service.url}/graphql",
        params={"query": SUBJECT},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert response.json() == {"data": {"me": {"subject": "carol"}}}


def test_oidc_provider_down_without_cached_keys_is_503(
    production_service: RunningService, oidc_provider: Any
) -> None:
    token = production_service.token("dave", ("user",))
    with oidc_provider.down():
        response = post(production_service, {"query": SUBJECT}, Authorization=f"Bearer {token}")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert error_code(response) == "UNAVAILABLE"
    assert "127.0.0.1" not in response.json()["errors"][0]["message"]


# -- limits ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "message"),
    [(11, "exceeds maximum operation depth of 10"), (500, "nested too deeply")],
)
def test_deep_nesting_is_refused(shared_service: RunningService, levels: int, message: str) -> None:
    query = "{ " + "medias { " * levels + "id" + " }" * levels + " }"
    response = post(shared_service, {"query": query}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    messages = " ".join(error["message"] for error in response.json()["errors"])
    assert message in messages


def test_depth_limit_comes_from_settings(tmp_path: Path) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_GRAPHQL_MAX_DEPTH="2") as service:
        shallow = post(service, {"query": SUBJECT})
        assert shallow.json() == {"data": {"me": {"subject": ""}}}
        deep = post(
            service, {"query": "{ medias { edges { node { id } } } }"}, Accept=GRAPHQL_RESPONSE
        )
        assert deep.status_code == 400
        assert "exceeds maximum operation depth of 2" in deep.json()["errors"][0]["message"]


def test_a_thousand_aliases_are_refused(shared_service: RunningService) -> None:
    query = "{ " + " ".join(f"a{index}: me {{ subject }}" for index in range(1000)) + " }"
    response = post(shared_service, {"query": query}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert error_code(response) == "GRAPHQL_PARSE_FAILED"


def test_aliases_up_to_the_limit_pass_and_one_more_fails(shared_service: RunningService) -> None:
    def aliases(count: int) -> str:
        return "{ " + " ".join(f"a{index}: me {{ subject }}" for index in range(count)) + " }"

    assert post(shared_service, {"query": aliases(30)}).json()["data"]["a29"] == {"subject": ""}
    refused = post(shared_service, {"query": aliases(31)}, Accept=GRAPHQL_RESPONSE)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["message"] == "31 aliases found. Allowed: 30"


def test_too_many_tokens_are_refused(shared_service: RunningService) -> None:
    query = "{ me { " + " ".join(["subject"] * 2500) + " } }"
    response = post(shared_service, {"query": query}, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert "more than 2000 tokens" in response.json()["errors"][0]["message"]


def test_bodies_over_the_limit_are_413(shared_service: RunningService) -> None:
    padding = " " * (1024 * 1024)
    response = post(shared_service, {"query": SUBJECT + padding})
    assert response.status_code == 413
    assert error_code(response) == "PAYLOAD_TOO_LARGE"


def test_the_graphiql_introspection_query_fits_the_limits(shared_service: RunningService) -> None:
    query = get_introspection_query(descriptions=True, input_value_deprecation=True)
    response = post(shared_service, {"query": query})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body
    names = {item["name"] for item in body["data"]["__schema"]["types"]}
    assert {"Media", "MediaConnection", "UploadTicket", "SignedUrl"} <= names


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_several_operations_without_a_name_are_refused(
    shared_service: RunningService, accept: str
) -> None:
    # GraphQL §6.1 GetOperation: ambiguous documents are request errors; nothing runs.
    token = shared_service.token("ambiguous-user")
    query = 'mutation B { deleteMedia(id: "AAAAAAAAAAAAAAAAAAAAAA") } query A { me { subject } }'
    response = httpx.post(
        f"{shared_service.url}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}", "Accept": accept},
    )
    body = response.json()
    assert "data" not in body or body["data"] is None
    assert "operation name" in body["errors"][0]["message"]
    assert response.status_code == (400 if accept.endswith("graphql-response+json") else 200)
    named = httpx.post(
        f"{shared_service.url}/graphql",
        json={"query": query, "operationName": "A"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert named.json()["data"]["me"]["subject"] == "ambiguous-user"


@pytest.mark.parametrize(
    ("accept", "status"),
    [("application/json", 200), ("application/graphql-response+json", 400)],
)
def test_unknown_operation_name_is_a_request_error(
    shared_service: RunningService, accept: str, status: int
) -> None:
    response = httpx.post(
        f"{shared_service.url}/graphql",
        json={"query": "query A { me { subject } }", "operationName": "C"},
        headers={"Accept": accept},
    )
    assert response.status_code == status
    body = response.json()
    assert "data" not in body
    assert "C" in body["errors"][0]["message"]


def test_a_non_string_operation_name_is_a_bad_request(shared_service: RunningService) -> None:
    response = httpx.post(
        f"{shared_service.url}/graphql",
        json={"query": "query A { me { subject } }", "operationName": 5},
    )
    assert response.status_code == 400
    assert "operationName" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_a_subscription_over_plain_http_is_a_request_error(
    shared_service: RunningService, accept: str
) -> None:
    document = 'subscription { mediaUpdated(id: "AAAAAAAAAAAAAAAAAAAAAA") { id } }'
    response = post(shared_service, {"query": document}, Accept=accept)
    assert response.status_code == (400 if "graphql-response" in accept else 200)
    assert "text/event-stream" in response.json()["errors"][0]["message"]
    assert error_code(response) == "GRAPHQL_VALIDATION_FAILED"
