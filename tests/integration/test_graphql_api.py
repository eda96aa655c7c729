"""The GraphQL API over real HTTP against the whole app: every query, mutation and error code."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from graphql import GraphQLError

from api.errors import ErrorCodes, format_error
from api.schema import MediaSchema
from media.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidSignature,
    MediaError,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
)
from media.ids import is_media_id, new_media_id
from server.lifecycle import DEV_ISSUER_URL
from tests.support.app import RunningService, embedded_service_at
from tests.support.documents import DELETE, REVOKE
from tests.support.media_files import MediaFiles

MEDIA_FIELDS = """
    id name mediaType kind status failureReason sizeBytes mediaDate createdAt updatedAt
    width height durationSeconds hasThumbnail
    streamUrl { url expiresAt } downloadUrl(expiresIn: 60) { url expiresAt }
    thumbnailUrl { url expiresAt }
"""
CREATE_UPLOAD = """
mutation Create($input: CreateUploadInput!) {
  createUpload(input: $input) {
    uploadId uploadUrl method headers { name value } expiresAt maxBytes
    media { FIELDS }
  }
}""".replace("FIELDS", MEDIA_FIELDS)
GET_MEDIA = "query One($id: ID!) { media(id: $id) { FIELDS } }".replace("FIELDS", MEDIA_FIELDS)
LIST_MEDIA = """
query List($first: Int, $after: String, $filter: MediaFilter) {
  medias(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id name kind status mediaDate } }
    pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
  }
}"""
COMPLETE = "mutation Complete($id: ID!) { completeUpload(uploadId: $id) { FIELDS } }".replace(
    "FIELDS", MEDIA_FIELDS
)


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One embedded service for the tests of this module that isolate themselves by subject."""
    with embedded_service_at(tmp_path_factory.mktemp("graphql-api")) as running:
        yield running


def subject() -> str:
    """A subject no other test uses (the PostgreSQL database lives for the whole session)."""
    return f"user-{uuid.uuid4().hex[:12]}"


def codes(body: dict[str, Any]) -> list[str]:
    """The extensions.code of every error of a response body."""
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def ok(body: dict[str, Any]) -> dict[str, Any]:
    """The data of a response that must have no errors."""
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def create(
    service: RunningService,
    token: str,
    name: str = "clip.mp4",
    media_type: str = "video/mp4",
    size: float = 1234,
    media_date: str | None = None,
) -> dict[str, Any]:
    """createUpload; the ticket."""
    variables = {
        "input": {
            "fileName": name,
            "mediaType": media_type,
            "sizeBytes": size,
            "mediaDate": media_date,
        }
    }
    ticket: dict[str, Any] = ok(service.graphql(CREATE_UPLOAD, variables, token=token))[
        "createUpload"
    ]
    return ticket


def upload(service: RunningService, token: str, path: Path, media_type: str) -> dict[str, Any]:
    """The whole upload flow for a real file; the completed media."""
    body = path.read_bytes()
    ticket = create(service, token, path.name, media_type, len(body))
    headers = {header["name"]: header["value"] for header in ticket["headers"]}
    response = httpx.request(
        ticket["method"], ticket["uploadUrl"], content=body, headers=headers, timeout=60
    )
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 15
    while True:  # the processing job ends after the 202
        completed = service.graphql(COMPLETE, {"id": ticket["uploadId"]}, token=token)
        media: dict[str, Any] = ok(completed)["completeUpload"]
        if media["status"] != "IN_PROGRESS":
            return media
        assert time.monotonic() < deadline, media
        time.sleep(0.05)


def walk(service: RunningService, token: str, first: int, **variables: Any) -> list[list[str]]:
    """Every page of a listing, as lists of ids."""
    pages: list[list[str]] = []
    after = None
    while True:
        data = ok(
            service.graphql(LIST_MEDIA, {"first": first, "after": after, **variables}, token=token)
        )
        connection = data["medias"]
        pages.append([edge["node"]["id"] for edge in connection["edges"]])
        info = connection["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        if not info["hasNextPage"]:
            return pages
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
        after = info["endCursor"]


# -- me -------------------------------------------------------------------------------------------


def test_me_without_token_is_anonymous(any_service: RunningService) -> None:
    data = ok(any_service.graphql("{ me { subject issuer scopes anonymous admin } }"))
    assert data["me"] == {
        "subject": "",
        "issuer": "",
        "scopes": ["anonymous"],
        "anonymous": True,
        "admin": False,
    }


def test_me_names_the_caller(any_service: RunningService) -> None:
    name = subject()
    token = any_service.token(name, ("user", "admin"))
    me = ok(any_service.graphql("{ me { subject issuer scopes anonymous admin } }", token=token))[
        "me"
    ]
    assert me["subject"] == name
    settings = any_service.settings
    assert me["issuer"] == (DEV_ISSUER_URL if settings.uses_dev_issuer else settings.oidc_issuer)
    assert me["scopes"] == ["admin", "user"]
    assert (me["anonymous"], me["admin"]) == (False, True)


# -- createUpload / media -------------------------------------------------------------------------


def test_create_upload_hands_out_a_ticket_and_an_in_progress_media(
    any_service: RunningService,
) -> None:
    token = any_service.token(subject())
    before = datetime.now(UTC)
    ticket = create(
        any_service, token, "Holiday.mp4", "video/mp4", 4096, "2024-05-01T10:00:00+00:00"
    )
    assert ticket["method"] == "PUT"
    assert ticket["uploadUrl"].startswith(f"{any_service.url}/upload/")
    assert {"name": "Content-Type", "value": "video/mp4"} in ticket["headers"]
    assert ticket["maxBytes"] == 4096
    uuid.UUID(ticket["uploadId"])
    assert datetime.fromisoformat(ticket["expiresAt"]) > before
    media = ticket["media"]
    assert is_media_id(media["id"])
    assert (media["name"], media["mediaType"], media["kind"], media["status"]) == (
        "Holiday.mp4",
        "video/mp4",
        "VIDEO",
        "IN_PROGRESS",
    )
    assert datetime.fromisoformat(media["mediaDate"]) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert media["hasThumbnail"] is False
    # Nothing to read before processing succeeded.
    assert (
        media["streamUrl"] is None
        and media["downloadUrl"] is None
        and media["thumbnailUrl"] is None
    )


def test_media_is_visible_to_its_owner_and_admins_only(any_service: RunningService) -> None:
    owner, other = any_service.token(subject()), any_service.token(subject())
    admin = any_service.token(subject(), ("admin",))
    media_id = create(any_service, owner)["media"]["id"]
    assert (
        ok(any_service.graphql(GET_MEDIA, {"id": media_id}, token=owner))["media"]["id"] == media_id
    )
    assert (
        ok(any_service.graphql(GET_MEDIA, {"id": media_id}, token=admin))["media"]["id"] == media_id
    )
    assert ok(any_service.graphql(GET_MEDIA, {"id": media_id}, token=other))["media"] is None
    assert ok(any_service.graphql(GET_MEDIA, {"id": media_id}))["media"] is None


@pytest.mark.parametrize("bad_id", ["abc", "-1", "0", "1.5", "99999999999999999999", "", " 1x"])
def test_media_with_an_id_that_names_nothing_is_null(
    shared_service: RunningService, bad_id: str
) -> None:
    token = shared_service.token(subject())
    assert ok(shared_service.graphql(GET_MEDIA, {"id": bad_id}, token=token))["media"] is None


def test_successful_media_hands_out_signed_urls(
    shared_service: RunningService, media_files: MediaFiles
) -> None:
    token = shared_service.token(subject())
    media = upload(shared_service, token, media_files.png, "image/png")
    assert (media["status"], media["kind"], media["width"], media["height"]) == (
        "SUCCESS",
        "IMAGE",
        640,
        480,
    )
    assert media["sizeBytes"] == media_files.png.stat().st_size
    assert media["hasThumbnail"] is True
    now = datetime.now(UTC)
    for field in ("streamUrl", "downloadUrl", "thumbnailUrl"):
        assert media[field]["url"].startswith(f"{shared_service.url}/media/")
    download_expiry = datetime.fromisoformat(media["downloadUrl"]["expiresAt"])
    assert download_expiry - now < timedelta(seconds=90)  # expiresIn: 60 was asked
    assert httpx.get(media["streamUrl"]["url"]).content == media_files.png.read_bytes()
    thumb = httpx.get(media["thumbnailUrl"]["url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"


def test_expires_in_is_capped_and_must_be_positive(
    shared_service: RunningService, media_files: MediaFiles
) -> None:
    token = shared_service.token(subject())
    media_id = upload(shared_service, token, media_files.png, "image/png")["id"]
    query = "query($id: ID!, $s: Int) { media(id: $id) { streamUrl(expiresIn: $s) { expiresAt } } }"
    long = ok(shared_service.graphql(query, {"id": media_id, "s": 10**9}, token=token))
    expiry = datetime.fromisoformat(long["media"]["streamUrl"]["expiresAt"])
    assert expiry - datetime.now(UTC) <= timedelta(hours=24, seconds=5)
    body = shared_service.graphql(query, {"id": media_id, "s": 0}, token=token)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "expiresIn"


# -- medias ---------------------------------------------------------------------------------------


def test_medias_walks_every_page_without_gaps_or_duplicates(any_service: RunningService) -> None:
    token = any_service.token(subject())
    created = [create(any_service, token, f"clip-{index}.mp4")["media"]["id"] for index in range(7)]
    pages = walk(any_service, token, 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    listed = [media_id for page in pages for media_id in page]
    assert listed == list(reversed(created))  # newest first, each exactly once


def test_medias_pages_are_stable_under_inserts(shared_service: RunningService) -> None:
    token = shared_service.token(subject())
    created = [
        create(shared_service, token, f"clip-{index}.mp4")["media"]["id"] for index in range(5)
    ]
    first = ok(shared_service.graphql(LIST_MEDIA, {"first": 2}, token=token))["medias"]
    newer = create(shared_service, token, "newer.mp4")["media"]["id"]
    after = first["pageInfo"]["endCursor"]
    rest = ok(shared_service.graphql(LIST_MEDIA, {"first": 10, "after": after}, token=token))[
        "medias"
    ]
    seen = [edge["node"]["id"] for edge in first["edges"] + rest["edges"]]
    assert seen == list(reversed(created))
    assert newer not in seen


def test_medias_lists_only_the_callers_media_and_everything_for_admins(
    any_service: RunningService,
) -> None:
    alice, bob = any_service.token(subject()), any_service.token(subject())
    admin = any_service.token(subject(), ("admin",))
    tag = uuid.uuid4().hex[:8]
    mine = create(any_service, alice, f"{tag}-a.mp4")["media"]["id"]
    theirs = create(any_service, bob, f"{tag}-b.mp4")["media"]["id"]
    assert [page for page in walk(any_service, alice, 10)] == [[mine]]
    assert [page for page in walk(any_service, bob, 10)] == [[theirs]]
    everything = walk(any_service, admin, 10, filter={"nameContains": tag})
    assert everything == [[theirs, mine]]
    anonymous = ok(any_service.graphql(LIST_MEDIA, {"first": 10}))["medias"]
    assert anonymous == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "endCursor": None,
            "hasPreviousPage": False,
            "startCursor": None,
        },
    }


def test_medias_filters(any_service: RunningService) -> None:
    token = any_service.token(subject())
    video = create(
        any_service, token, "Beach Walk.mp4", "video/mp4", media_date="2023-01-10T00:00:00Z"
    )
    image = create(any_service, token, "beach.png", "image/png", media_date="2023-06-10T00:00:00Z")
    other = create(any_service, token, "city.jpg", "image/jpeg")
    ids = {
        name: ticket["media"]["id"] for name, ticket in (("v", video), ("i", image), ("o", other))
    }

    def listed(**media_filter: Any) -> set[str]:
        return {
            media_id
            for page in walk(any_service, token, 10, filter=media_filter)
            for media_id in page
        }

    assert listed(kind="VIDEO") == {ids["v"]}
    assert listed(kind="IMAGE") == {ids["i"], ids["o"]}
    assert listed(status="IN_PROGRESS") == set(ids.values())
    assert listed(status="SUCCESS") == set()
    assert listed(nameContains="BEACH") == {ids["v"], ids["i"]}
    assert listed(mediaDateFrom="2023-03-01T00:00:00Z") == {ids["i"]}
    assert listed(mediaDateTo="2023-03-01T00:00:00Z") == {ids["v"]}
    assert listed(kind="IMAGE", nameContains="beach", mediaDateFrom="2023-01-01T00:00:00Z") == {
        ids["i"]
    }


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": 101}, "first"),
        ({"first": -1}, "first"),
        ({"first": 5, "after": "not-a-cursor"}, "after"),
        (
            {
                "filter": {
                    "mediaDateFrom": "2024-02-01T00:00:00Z",
                    "mediaDateTo": "2024-01-01T00:00:00Z",
                }
            },
            "filter",
        ),
    ],
)
def test_medias_refuses_bad_arguments(
    shared_service: RunningService, variables: dict[str, Any], field: str
) -> None:
    token = shared_service.token(subject())
    body = shared_service.graphql(LIST_MEDIA, variables, token=token)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["data"] is None


def test_medias_first_100_is_allowed(shared_service: RunningService) -> None:
    token = shared_service.token(subject())
    data = ok(shared_service.graphql(LIST_MEDIA, {"first": 100}, token=token))
    assert data["medias"]["edges"] == []


# -- completeUpload -------------------------------------------------------------------------------


def test_complete_upload_is_idempotent_and_owner_only(any_service: RunningService) -> None:
    owner, other = any_service.token(subject()), any_service.token(subject())
    ticket = create(any_service, owner)
    for _ in range(2):
        media = ok(any_service.graphql(COMPLETE, {"id": ticket["uploadId"]}, token=owner))[
            "completeUpload"
        ]
        assert (media["id"], media["status"]) == (ticket["media"]["id"], "IN_PROGRESS")
    assert codes(any_service.graphql(COMPLETE, {"id": ticket["uploadId"]}, token=other)) == [
        "NOT_FOUND"
    ]
    assert codes(any_service.graphql(COMPLETE, {"id": str(uuid.uuid4())}, token=owner)) == [
        "NOT_FOUND"
    ]
    admin = any_service.token(subject(), ("admin",))
    assert ok(any_service.graphql(COMPLETE, {"id": ticket["uploadId"]}, token=admin))[
        "completeUpload"
    ]


def test_complete_upload_refuses_an_id_that_is_not_a_uuid(shared_service: RunningService) -> None:
    body = shared_service.graphql(COMPLETE, {"id": "42"}, token=shared_service.token(subject()))
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "uploadId"


# -- deleteMedia / revokeMediaUrls ----------------------------------------------------------------


def test_delete_media_removes_own_media_once(any_service: RunningService) -> None:
    token = any_service.token(subject())
    media_id = create(any_service, token)["media"]["id"]
    assert ok(any_service.graphql(DELETE, {"id": media_id}, token=token)) == {"deleteMedia": True}
    assert ok(any_service.graphql(GET_MEDIA, {"id": media_id}, token=token))["media"] is None
    assert ok(any_service.graphql(DELETE, {"id": media_id}, token=token)) == {"deleteMedia": False}


def test_delete_media_of_another_user_changes_nothing_but_admins_may(
    any_service: RunningService,
) -> None:
    owner, other = any_service.token(subject()), any_service.token(subject())
    admin = any_service.token(subject(), ("admin",))
    media_id = create(any_service, owner)["media"]["id"]
    # Not visible means not found: the answer is the same as for an id that never existed.
    assert ok(any_service.graphql(DELETE, {"id": media_id}, token=other)) == {"deleteMedia": False}
    assert (
        ok(any_service.graphql(GET_MEDIA, {"id": media_id}, token=owner))["media"]["id"] == media_id
    )
    assert ok(any_service.graphql(DELETE, {"id": media_id}, token=admin)) == {"deleteMedia": True}
    assert ok(any_service.graphql(GET_MEDIA, {"id": media_id}, token=owner))["media"] is None


def test_revoke_media_urls_is_owner_or_admin_only(any_service: RunningService) -> None:
    owner, other = any_service.token(subject()), any_service.token(subject())
    admin = any_service.token(subject(), ("admin",))
    media_id = create(any_service, owner)["media"]["id"]
    assert (
        ok(any_service.graphql(REVOKE, {"id": media_id}, token=owner))["revokeMediaUrls"]["id"]
        == media_id
    )
    assert codes(any_service.graphql(REVOKE, {"id": media_id}, token=other)) == ["NOT_FOUND"]
    assert codes(any_service.graphql(REVOKE, {"id": new_media_id()}, token=owner)) == ["NOT_FOUND"]
    assert (
        ok(any_service.graphql(REVOKE, {"id": media_id}, token=admin))["revokeMediaUrls"]["id"]
        == media_id
    )


def test_revoke_media_urls_stops_every_issued_url(
    shared_service: RunningService, media_files: MediaFiles
) -> None:
    token = shared_service.token(subject())
    media = upload(shared_service, token, media_files.jpeg, "image/jpeg")
    old = media["streamUrl"]["url"]
    assert httpx.get(old).status_code == 200
    revoked = ok(shared_service.graphql(REVOKE, {"id": media["id"]}, token=token))[
        "revokeMediaUrls"
    ]
    assert httpx.get(old).status_code == 403
    assert httpx.get(revoked["streamUrl"]["url"]).status_code == 200


@pytest.mark.parametrize("mutation", [DELETE, REVOKE])
def test_mutations_refuse_an_id_that_is_not_a_media_id(
    shared_service: RunningService, mutation: str
) -> None:
    body = shared_service.graphql(mutation, {"id": "x1"}, token=shared_service.token(subject()))
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "id"


# -- error codes ----------------------------------------------------------------------------------

MUTATIONS = [
    (CREATE_UPLOAD, {"input": {"fileName": "a.mp4", "mediaType": "video/mp4", "sizeBytes": 10}}),
    (COMPLETE, {"id": str(uuid.uuid4())}),
    (DELETE, {"id": new_media_id()}),
    (REVOKE, {"id": new_media_id()}),
]


@pytest.mark.parametrize(("mutation", "variables"), MUTATIONS)
def test_mutations_without_token_are_unauthenticated(
    shared_service: RunningService, mutation: str, variables: dict[str, Any]
) -> None:
    body = shared_service.graphql(mutation, variables)
    assert codes(body) == ["UNAUTHENTICATED"]
    assert body["data"] is None


@pytest.mark.parametrize(("mutation", "variables"), MUTATIONS)
def test_mutations_with_only_the_anonymous_scope_are_forbidden(
    any_service: RunningService, mutation: str, variables: dict[str, Any]
) -> None:
    token = any_service.token(subject(), ("anonymous",))
    assert codes(any_service.graphql(mutation, variables, token=token)) == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mediaType": "application/pdf"}, "mediaType"),
        ({"sizeBytes": 0}, "sizeBytes"),
        ({"sizeBytes": 1.5}, "sizeBytes"),
        ({"sizeBytes": 5 * 1024**4}, "sizeBytes"),
        ({"fileName": "   "}, "fileName"),
        ({"fileName": "x" * 256}, "fileName"),
        ({"fileName": "bad\nname.mp4"}, "fileName"),
        ({"fileName": "bad\x00name.mp4"}, "fileName"),
        ({"fileName": "evil\u202egpj.mp4"}, "fileName"),  # a bidi override: was `name`
        ({"fileName": "line\u2028break.mp4"}, "fileName"),
        ({"mediaDate": "2024-01-01T00:00:00"}, "mediaDate"),
    ],
)
def test_create_upload_refuses_bad_input_naming_the_field(
    shared_service: RunningService, changes: dict[str, Any], field: str
) -> None:
    variables = {
        "input": {"fileName": "a.mp4", "mediaType": "video/mp4", "sizeBytes": 10, **changes}
    }
    body = shared_service.graphql(CREATE_UPLOAD, variables, token=shared_service.token(subject()))
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["errors"][0]["path"] == ["createUpload"]


def test_too_many_open_uploads_is_rate_limited(tmp_path: Path) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_MAX_PENDING_UPLOADS="2") as service:
        token = service.token(subject())
        create(service, token)
        create(service, token)
        variables = {"input": {"fileName": "a.mp4", "mediaType": "video/mp4", "sizeBytes": 10}}
        body = service.graphql(CREATE_UPLOAD, variables, token=token)
        assert codes(body) == ["RATE_LIMITED"]
        assert body["errors"][0]["extensions"]["limit"] == 2


def test_graphql_errors_have_codes(shared_service: RunningService) -> None:
    syntax = shared_service.graphql("{ me { subject }")
    assert codes(syntax) == ["GRAPHQL_PARSE_FAILED"]
    unknown = shared_service.graphql("{ me { nope } }")
    assert codes(unknown) == ["GRAPHQL_VALIDATION_FAILED"]
    variable = shared_service.graphql(LIST_MEDIA, {"filter": {"mediaDateFrom": "yesterday"}})
    assert codes(variable) == ["BAD_USER_INPUT"]
    assert "data" not in syntax and "data" not in unknown and "data" not in variable


# -- the one mapping, unit-tested on a real schema ------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (Unauthenticated(reason="expired"), "UNAUTHENTICATED"),
        (Forbidden("scope"), "FORBIDDEN"),
        (InvalidSignature("refused", reason="revoked"), "FORBIDDEN"),
        (NotFound("media", id=1), "NOT_FOUND"),
        (InvalidInput("bad", field="x"), "BAD_USER_INPUT"),
        (UnsupportedMediaType("type", field="mediaType"), "BAD_USER_INPUT"),
        (TooLarge("big", limit=5), "BAD_USER_INPUT"),
        (Conflict("used"), "CONFLICT"),
        (RateLimited("slow", limit=2), "RATE_LIMITED"),
        (Unavailable("db at 10.0.0.5 down", dependency="database"), "UNAVAILABLE"),
        (ConfigError("MEDIA_X"), "INTERNAL"),
        (MediaError("base"), "INTERNAL"),
        (RuntimeError("SELECT * FROM media; key=s3cr3t"), "INTERNAL"),
    ],
)
def test_every_error_class_maps_to_its_code(error: Exception, code: str) -> None:
    located = GraphQLError("raw", path=["field"], original_error=error)
    formatted = format_error(located, "req-1")
    assert formatted.extensions is not None and formatted.extensions["code"] == code
    assert "10.0.0.5" not in formatted.message and "s3cr3t" not in formatted.message
    if code == "INTERNAL":
        assert formatted.message == "Internal server error"
        assert formatted.extensions["requestId"] == "req-1"


@strawberry.type
class _Exploding:
    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError("password=hunter2 in SELECT")


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = MediaSchema(query=_Exploding, extensions=[ErrorCodes])

    class Context:
        request_id = "abc123"

    with caplog.at_level(logging.ERROR, logger="media.api"):
        result = await schema.execute("{ boom }", context_value=Context())
    assert result.errors is not None
    formatted = result.errors[0].formatted
    assert formatted["message"] == "Internal server error"
    assert formatted["extensions"] == {"code": "INTERNAL", "requestId": "abc123"}
    assert "hunter2" not in str(formatted)
    assert "abc123" in caplog.text and "hunter2" in caplog.text  # the log keeps the cause


# -- cost of a listing ----------------------------------------------------------------------------

LIST_EVERYTHING = """
query List($first: Int) {
  medias(first: $first) {
    edges { cursor node { FIELDS } }
    pageInfo { hasNextPage endCursor }
  }
}""".replace("FIELDS", MEDIA_FIELDS)


class Calls:
    """Counts calls through real methods of live objects (the calls still happen)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, owner: object, name: str, label: str) -> None:
        real = getattr(owner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[label] = self.counts.get(label, 0) + 1
            return await real(*args, **kwargs)

        setattr(owner, name, counted)

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


def test_a_page_of_100_costs_one_service_call_and_as_many_queries_as_a_page_of_1(
    tmp_path: Path, media_files: MediaFiles
) -> None:
    import anyio

    from media.db import migrate
    from server.app import create_app
    from server.lifecycle import dev_issuer
    from tests.support import free_port
    from tests.support.app import settings_for
    from tests.support.server import serve_app

    port = free_port()
    settings = settings_for(tmp_path / "data", port, MEDIA_MAX_PENDING_UPLOADS="500")
    anyio.run(migrate, settings)
    issuer = dev_issuer(settings, str(settings.public_url))
    app = create_app(settings)
    with serve_app(app, port=port) as url:
        service = RunningService(
            url=url,
            settings=settings,
            mint=lambda sub, scopes: issuer.mint(sub, scopes, audience=settings.oidc_audience),
        )
        token = service.token(subject())
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda index: create(service, token, f"clip-{index}.mp4"), range(98)))
        for _ in range(2):  # newest: processed, with thumbnails to join
            assert upload(service, token, media_files.png, "image/png")["hasThumbnail"]
        calls = Calls()
        core = app.state.service
        calls.count(core.library, "list_media", "list_media")
        calls.count(core.library, "get_media", "get_media")
        # Piccolo numbers every statement an engine runs; the difference counts SQL queries.
        engine = core.parts.repository._db.engine

        def listing(first: int) -> tuple[dict[str, Any], dict[str, int]]:
            before = engine.query_id
            data = ok(service.graphql(LIST_EVERYTHING, {"first": first}, token=token))
            return data, {**calls.take(), "sql": engine.query_id - before}

        listing(1)  # warm caches and connections
        one, cost_of_one = listing(1)
        hundred, cost_of_hundred = listing(100)
    assert len(one["medias"]["edges"]) == 1 and len(hundred["medias"]["edges"]) == 100
    assert hundred["medias"]["edges"][0]["node"]["thumbnailUrl"] is not None
    assert cost_of_one["list_media"] == cost_of_hundred["list_media"] == 1
    assert "get_media" not in cost_of_one and "get_media" not in cost_of_hundred
    # The token is verified from the verifier's cache, so every query is the listing's.
    assert 1 <= cost_of_one["sql"] == cost_of_hundred["sql"] <= 2, (cost_of_one, cost_of_hundred)
