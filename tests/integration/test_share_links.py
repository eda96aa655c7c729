"""Share links over GraphQL against the whole app: anonymous access, expiry, revocation, passwords,
ownership, the anonymous view's fields, limits; stream URLs minted through a link die with it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from media.ids import new_media_id
from media.service.shares import ATTEMPT_WINDOW_S, MAX_FAILED_ATTEMPTS
from tests.support import free_port
from tests.support.app import RunningService, production_settings, settings_for
from tests.support.clock import ManualClock
from tests.support.documents import DELETE, LINKS, MEDIA, REVOKE_LINK
from tests.support.flow import upload_file
from tests.support.live import acknowledged, messages, socket
from tests.support.media_files import MediaFiles
from tests.support.sharing import clocked_embedded, create_link, ok, run_clocked, shared

MAX_TTL_S = 7 * 86_400
NULL = {"data": {"sharedMedia": None}}


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, clock: ManualClock
) -> Iterator[RunningService]:
    """One embedded service whose clock the tests move; tests isolate themselves by subject."""
    data_dir = tmp_path_factory.mktemp("share-links")
    environ = {"MEDIA_SHARE_MAX_TTL_S": str(MAX_TTL_S), "MEDIA_MAX_SHARE_LINKS": "6"}
    with clocked_embedded(data_dir, clock, **environ) as running:
        yield running


def user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def upload_pair(service: RunningService, token: str, files: MediaFiles) -> list[dict[str, Any]]:
    """A video and an image of the owner."""
    return [
        upload_file(service, token, files.mp4_faststart, "video/mp4"),
        upload_file(service, token, files.png, "image/png"),
    ]


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=10)


def test_anyone_with_the_token_sees_the_media(
    service: RunningService, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    video, image = upload_pair(service, owner, media_files)
    link = create_link(service, owner, [video["id"], image["id"]], title="Summer")
    assert link["url"] == f"{service.url}/s/{link['token']}"
    assert (link["title"], link["hasPassword"], link["allowDownload"]) == ("Summer", False, False)
    assert [m["id"] for m in link["medias"]] == [video["id"], image["id"]]
    assert link["id"] != link["token"] and len(link["token"]) >= 40

    data = ok(shared(service, link["token"]))["sharedMedia"]  # no bearer token
    assert data["title"] == "Summer" and data["allowDownload"] is False
    assert [(m["id"], m["kind"]) for m in data["medias"]] == [
        (video["id"], "VIDEO"),
        (image["id"], "IMAGE"),
    ]
    shown_video = data["medias"][0]
    assert shown_video["downloadUrl"] is None  # not allowed by this link
    assert (shown_video["width"], shown_video["height"]) == (320, 240)
    stream = get(shown_video["streamUrl"]["url"], Range="bytes=0-99")
    assert stream.status_code == 206 and len(stream.content) == 100
    assert media_files.mp4_faststart.read_bytes()[:100] == stream.content
    # The owner's file name does not travel through the link, not even as a header.
    assert "faststart" not in stream.headers["content-disposition"]
    assert stream.headers["content-disposition"].startswith('inline; filename="video.mp4"')
    thumb = get(shown_video["thumbnailUrl"]["url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert get(data["medias"][1]["streamUrl"]["url"]).content == media_files.png.read_bytes()

    links = ok(service.graphql(LINKS, token=owner))["shareLinks"]["edges"]
    assert [edge["node"]["viewCount"] for edge in links] == [1]


def test_download_urls_only_when_the_link_allows(
    service: RunningService, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    image = upload_file(service, owner, media_files.jpeg, "image/jpeg")
    link = create_link(service, owner, [image["id"]], allowDownload=True)
    media = ok(shared(service, link["token"]))["sharedMedia"]["medias"][0]
    download = get(media["downloadUrl"]["url"])
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.content == media_files.jpeg.read_bytes()


def test_the_anonymous_view_has_no_owner_only_fields(service: RunningService) -> None:
    query = """{ __type(name: "SharedMedia") { fields { name } } }"""
    fields = {f["name"] for f in ok(service.graphql(query))["__type"]["fields"]}
    assert fields == {
        "id",
        "kind",
        "mediaType",
        "playbackMediaType",
        "thumbhash",
        "width",
        "height",
        "durationSeconds",
        "hasThumbnail",
        "streamUrl",
        "hlsUrl",
        "downloadUrl",
        "thumbnailUrl",
    }
    for owner_only in ("name", "latitude", "longitude", "failureReason", "createdAt", "status"):
        body = service.graphql(
            "query($t: String!) { sharedMedia(token: $t) { medias { " + owner_only + " } } }",
            {"t": "x" * 43},
        )
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"], owner_only


def test_unusable_links_all_look_alike(service: RunningService, media_files: MediaFiles) -> None:
    owner = service.token(user())
    image = upload_file(service, owner, media_files.png, "image/png")
    revoked = create_link(service, owner, [image["id"]])
    assert ok(service.graphql(REVOKE_LINK, {"id": revoked["id"]}, token=owner))["revokeShareLink"]
    locked = create_link(service, owner, [image["id"]], password="opensesame")
    for token, password in [
        ("A" * 59, None),  # well formed, unknown
        (locked["token"][:16] + "A" * 43, "opensesame"),  # a real link's id, a wrong secret
        (locked["token"] + "A", "opensesame"),
        ("not a token!", None),
        ("", None),
        ("x" * 5000, None),
        (revoked["token"], None),
        (locked["token"], None),
        (locked["token"], "wrong"),
    ]:
        assert shared(service, token, password) == NULL, (token[:12], password)


def test_expiry_with_the_injected_clock(
    service: RunningService, clock: ManualClock, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    video = upload_file(service, owner, media_files.mp4_faststart, "video/mp4")
    link = create_link(service, owner, [video["id"]], expiresIn=600)
    expires_at = datetime.fromisoformat(link["expiresAt"])
    assert abs((expires_at - clock.now).total_seconds() - 600) < 2
    media = ok(shared(service, link["token"]))["sharedMedia"]["medias"][0]
    # No URL minted through a link outlives it, whatever the client asks for.
    asked = service.graphql(
        "query($t: String!) { sharedMedia(token: $t) { medias { streamUrl(expiresIn: 86400) {"
        " expiresAt } } } }",
        {"t": link["token"]},
    )
    long_url = ok(asked)["sharedMedia"]["medias"][0]["streamUrl"]
    assert datetime.fromisoformat(long_url["expiresAt"]) <= expires_at
    url = media["streamUrl"]["url"]
    assert get(url).status_code == 200
    clock.advance(599)
    assert ok(shared(service, link["token"]))["sharedMedia"] is not None
    clock.advance(2)
    assert shared(service, link["token"]) == NULL
    assert get(url).status_code == 403
    assert get(media["thumbnailUrl"]["url"]).status_code == 403
    # Expired links stay listed for their owner until revoked.
    listed = ok(service.graphql(LINKS, token=owner))["shareLinks"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [link["id"]]


def test_expires_in_is_required_positive_and_capped(
    service: RunningService, clock: ManualClock, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    image = upload_file(service, owner, media_files.png, "image/png")
    capped = create_link(service, owner, [image["id"]], expiresIn=10**9)
    granted = datetime.fromisoformat(capped["expiresAt"]) - clock.now
    assert abs(granted.total_seconds() - MAX_TTL_S) < 2
    body = service.graphql(
        "mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id } }",
        {"i": {"mediaIds": [image["id"]], "expiresIn": 0}},
        token=owner,
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "expiresIn"
    missing = service.graphql(
        "mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id } }",
        {"i": {"mediaIds": [image["id"]]}},
        token=owner,
    )
    assert codes(missing) == ["BAD_USER_INPUT"]


def test_revocation_ends_page_graphql_and_minted_urls(
    service: RunningService, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    video = upload_file(service, owner, media_files.mp4_faststart, "video/mp4")
    link = create_link(service, owner, [video["id"]], allowDownload=True)
    media = ok(shared(service, link["token"]))["sharedMedia"]["medias"][0]
    urls = [media[name]["url"] for name in ("streamUrl", "thumbnailUrl", "downloadUrl")]
    for url in urls * 2:  # the second round is served from the stream cache
        assert get(url, Range="bytes=0-9").status_code == 206
    assert ok(service.graphql(REVOKE_LINK, {"id": link["id"]}, token=owner))["revokeShareLink"]
    assert shared(service, link["token"]) == NULL
    for url in urls:
        assert get(url, Range="bytes=0-9").status_code == 403
    # Idempotent, and gone from the listing.
    assert ok(service.graphql(REVOKE_LINK, {"id": link["id"]}, token=owner)) == {
        "revokeShareLink": False
    }
    assert ok(service.graphql(LINKS, token=owner))["shareLinks"]["edges"] == []
    # The owner's own URLs of the media are untouched by the link's end.
    assert get(video["streamUrl"]["url"], Range="bytes=0-9").status_code == 206


def test_another_user_can_neither_see_nor_revoke(
    service: RunningService, media_files: MediaFiles
) -> None:
    alice, bob = service.token(user()), service.token(user())
    image = upload_file(service, alice, media_files.png, "image/png")
    link = create_link(service, alice, [image["id"]])
    assert ok(service.graphql(LINKS, token=bob))["shareLinks"]["edges"] == []
    assert ok(service.graphql(REVOKE_LINK, {"id": link["id"]}, token=bob)) == {
        "revokeShareLink": False
    }
    assert ok(shared(service, link["token"]))["sharedMedia"] is not None
    stolen = service.graphql(
        "mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id } }",
        {"i": {"mediaIds": [image["id"]], "expiresIn": 60}},
        token=bob,
    )
    assert codes(stolen) == ["NOT_FOUND"]
    anonymous = service.graphql(
        "mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id } }",
        {"i": {"mediaIds": [image["id"]], "expiresIn": 60}},
    )
    assert codes(anonymous) == ["UNAUTHENTICATED"]
    assert codes(service.graphql(LINKS)) == ["UNAUTHENTICATED"]
    assert codes(service.graphql(REVOKE_LINK, {"id": link["id"]})) == ["UNAUTHENTICATED"]
    # A link's media never become visible to other users through the owner's API.
    assert ok(service.graphql(MEDIA, {"id": image["id"]}, token=bob)) == {"media": None}


def test_password_right_wrong_and_rate_limited(
    service: RunningService, clock: ManualClock, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    image = upload_file(service, owner, media_files.png, "image/png")
    link = create_link(service, owner, [image["id"]], password="correct horse")
    assert link["hasPassword"] is True
    assert shared(service, link["token"]) == NULL
    assert ok(shared(service, link["token"], "correct horse"))["sharedMedia"]["medias"]
    # Move to the start of a fresh attempt window so the count below is not split by its end.
    clock.advance(ATTEMPT_WINDOW_S - clock.now.timestamp() % ATTEMPT_WINDOW_S + 1)
    for _ in range(MAX_FAILED_ATTEMPTS):
        assert shared(service, link["token"], "battery staple") == NULL
    # Locked: even the right password is refused until the window passes.
    assert shared(service, link["token"], "correct horse") == NULL
    clock.advance(ATTEMPT_WINDOW_S)
    assert ok(shared(service, link["token"], "correct horse"))["sharedMedia"] is not None
    listed = ok(service.graphql(LINKS, token=owner))["shareLinks"]["edges"][0]["node"]
    assert listed["viewCount"] == 2  # only the granted calls count
    assert "argon2" not in str(listed)


def test_deleting_a_media_removes_it_from_every_link(
    service: RunningService, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    video, image = upload_pair(service, owner, media_files)
    first = create_link(service, owner, [video["id"], image["id"]])
    second = create_link(service, owner, [image["id"]])
    minted = ok(shared(service, first["token"]))["sharedMedia"]["medias"][1]["streamUrl"]["url"]
    assert ok(service.graphql(DELETE, {"id": image["id"]}, token=owner))["deleteMedia"]
    assert get(minted).status_code == 403
    medias = ok(shared(service, first["token"]))["sharedMedia"]["medias"]
    assert [m["id"] for m in medias] == [video["id"]]
    assert ok(shared(service, second["token"]))["sharedMedia"]["medias"] == []
    links = ok(service.graphql(LINKS, token=owner))["shareLinks"]["edges"]
    assert {e["node"]["id"]: [m["id"] for m in e["node"]["medias"]] for e in links} == {
        first["id"]: [video["id"]],
        second["id"]: [],
    }


def test_limits_are_bad_user_input(service: RunningService, media_files: MediaFiles) -> None:
    owner = service.token(user())
    image = upload_file(service, owner, media_files.png, "image/png")
    mutation = "mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id } }"
    cases = [
        ({"mediaIds": []}, "mediaIds", None),
        (
            {"mediaIds": [image["id"]] + [new_media_id() for _ in range(500)]},
            "mediaIds",
            500,
        ),
        ({"mediaIds": [image["id"]], "title": "t" * 201}, "title", 200),
        ({"mediaIds": [image["id"]], "title": "bad\u202etitle"}, "title", None),
        ({"mediaIds": [image["id"]], "password": ""}, "password", None),
        ({"mediaIds": [image["id"]], "password": "p" * 257}, "password", 256),
        ({"mediaIds": ["not-an-id"]}, "mediaIds", None),
    ]
    for fields, field, limit in cases:
        body = service.graphql(mutation, {"i": {"expiresIn": 60, **fields}}, token=owner)
        assert codes(body) == ["BAD_USER_INPUT"], (field, body)
        assert body["errors"][0]["extensions"]["field"] == field
        assert body["errors"][0]["extensions"].get("limit") == limit
    for _ in range(6):  # MEDIA_MAX_SHARE_LINKS of this service
        create_link(service, owner, [image["id"], image["id"]])  # duplicates collapse
    body = service.graphql(
        mutation, {"i": {"expiresIn": 60, "mediaIds": [image["id"]]}}, token=owner
    )
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["limit"] == 6
    assert "share links per user" in body["errors"][0]["message"]


def test_the_objects_one_request_lists_are_bounded(
    tmp_path: Path, clock: ManualClock, media_files: MediaFiles
) -> None:
    """Aliases, pages and a link's media add up against MEDIA_GRAPHQL_MAX_NODES."""
    with clocked_embedded(tmp_path, clock, MEDIA_GRAPHQL_MAX_NODES="10") as small:
        owner = small.token(user())
        pair = [m["id"] for m in upload_pair(small, owner, media_files)]
        link = create_link(small, owner, pair)

        def links(aliases: int) -> dict[str, Any]:  # a link and its two media: 3 objects each
            fields = " ".join(
                f"a{n}: shareLinks {{ edges {{ node {{ medias {{ id }} }} }} }}"
                for n in range(aliases)
            )
            return small.graphql(f"{{ {fields} }}", token=owner)

        def anonymous(aliases: int) -> dict[str, Any]:  # two media each
            token = link["token"]
            fields = " ".join(
                f'a{n}: sharedMedia(token: "{token}") {{ medias {{ id }} }}' for n in range(aliases)
            )
            return small.graphql(f"{{ {fields} }}")

        for ask, fits in ((links, 3), (anonymous, 5)):
            assert len(ok(ask(fits))) == fits
            refused = ask(fits + 1)
            assert codes(refused) == ["BAD_USER_INPUT"], refused
            assert refused["errors"][0]["extensions"]["limit"] == 10
            assert "more than 10 objects" in refused["errors"][0]["message"]
        # Each request has its own budget: the one refused above leaves none spent.
        assert len(ok(links(3))) == 3
        # So has each operation on one WebSocket (its context lasts as long as the socket).
        document = " ".join(
            f"a{n}: shareLinks {{ edges {{ node {{ medias {{ id }} }} }} }}" for n in range(3)
        )
        with socket(small.url, owner) as ws:
            acknowledged(ws)
            for op in ("1", "2", "3"):
                payload = {"query": f"{{ {document} }}", "variables": {}}
                ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))
                answer, done = list(messages(ws))
                assert answer["type"] == "next" and "errors" not in answer["payload"], answer
                assert (done["id"], done["type"]) == (op, "complete")


def test_share_links_are_relay_pages(
    service: RunningService, clock: ManualClock, media_files: MediaFiles
) -> None:
    owner = service.token(user())
    image = upload_file(service, owner, media_files.png, "image/png")
    made = []
    for n in range(3):
        made.append(create_link(service, owner, [image["id"]], title=f"n{n}")["id"])
        clock.advance(1)  # the settable clock stands still otherwise: one instant, id order
    page = ok(service.graphql(LINKS, {"first": 2}, token=owner))["shareLinks"]
    assert [e["node"]["id"] for e in page["edges"]] == made[::-1][:2]
    assert page["pageInfo"]["hasNextPage"] is True
    after = page["pageInfo"]["endCursor"]
    rest = ok(service.graphql(LINKS, {"first": 2, "after": after}, token=owner))["shareLinks"]
    assert [e["node"]["id"] for e in rest["edges"]] == [made[0]]
    assert rest["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": rest["edges"][0]["cursor"],
        "endCursor": rest["edges"][0]["cursor"],
    }
    assert codes(service.graphql(LINKS, {"after": "bogus"}, token=owner)) == ["BAD_USER_INPUT"]
    assert codes(service.graphql(LINKS, {"first": 101}, token=owner)) == ["BAD_USER_INPUT"]


def test_revocation_reaches_another_process_within_the_cache_bound(
    tmp_path: Path, media_files: MediaFiles
) -> None:
    """Two app processes on one database: a revocation in one is honoured by the other's stream
    cache within MEDIA_STREAM_CACHE_S, the bound of media revocation."""
    cache_s = 1.0
    clock = ManualClock()
    data_dir = tmp_path / "data"
    with clocked_embedded(data_dir, clock, MEDIA_STREAM_CACHE_S=str(cache_s)) as first:
        other_settings = settings_for(data_dir, free_port(), MEDIA_STREAM_CACHE_S=str(cache_s))
        with run_clocked(other_settings, first.mint, clock) as second:
            owner = first.token(user())
            image = upload_file(first, owner, media_files.png, "image/png")
            link = create_link(first, owner, [image["id"]])
            url = ok(shared(first, link["token"]))["sharedMedia"]["medias"][0]["streamUrl"]["url"]
            on_second = url.replace(first.url, second.url)
            assert get(on_second).status_code == 200  # now cached in the second process
            assert ok(first.graphql(REVOKE_LINK, {"id": link["id"]}, token=owner))
            revoked_at = time.monotonic()
            while get(on_second).status_code == 200:
                assert time.monotonic() - revoked_at < cache_s + 1.0, "revocation not honoured"
                time.sleep(0.1)
            assert shared(second, link["token"]) == NULL


def test_expiry_is_checked_before_any_cache(
    service: RunningService, clock: ManualClock, media_files: MediaFiles
) -> None:
    """A URL minted through a link is refused from the link's end, cache or not."""
    owner = service.token(user())
    image = upload_file(service, owner, media_files.png, "image/png")
    link = create_link(service, owner, [image["id"]], expiresIn=120)
    url = ok(shared(service, link["token"]))["sharedMedia"]["medias"][0]["streamUrl"]["url"]
    assert get(url).status_code == 200
    clock.advance(121)
    assert get(url).status_code == 403


@pytest.mark.postgres
def test_the_flow_on_postgresql_s3_and_oidc(
    tmp_path: Path,
    postgres_url: str,
    s3_bucket: str,
    oidc_provider: Any,
    media_files: MediaFiles,
) -> None:
    """Production shape: the link SQL (counts, joins, conditional updates) on PostgreSQL, the
    bytes from S3, bearer tokens from a real OIDC provider."""
    clock = ManualClock()
    settings, mint = production_settings(tmp_path / "data", postgres_url, s3_bucket, oidc_provider)
    with run_clocked(settings, mint, clock) as service:
        owner = service.token(user())
        video, image = upload_pair(service, owner, media_files)
        link = create_link(service, owner, [video["id"], image["id"]], password="pw", title="T")
        assert shared(service, link["token"]) == NULL
        clock.advance(ATTEMPT_WINDOW_S - clock.now.timestamp() % ATTEMPT_WINDOW_S + 1)
        for _ in range(MAX_FAILED_ATTEMPTS):
            assert shared(service, link["token"], "nope") == NULL
        assert shared(service, link["token"], "pw") == NULL
        clock.advance(ATTEMPT_WINDOW_S)
        data = ok(shared(service, link["token"], "pw"))["sharedMedia"]
        assert [m["id"] for m in data["medias"]] == [video["id"], image["id"]]
        url = data["medias"][0]["streamUrl"]["url"]
        assert get(url, Range="bytes=0-9").content == media_files.mp4_faststart.read_bytes()[:10]
        assert ok(service.graphql(DELETE, {"id": image["id"]}, token=owner))["deleteMedia"]
        edges = ok(service.graphql(LINKS, token=owner))["shareLinks"]["edges"]
        assert [(e["node"]["viewCount"], len(e["node"]["medias"])) for e in edges] == [(1, 1)]
        assert ok(service.graphql(REVOKE_LINK, {"id": link["id"]}, token=owner))["revokeShareLink"]
        assert get(url, Range="bytes=0-9").status_code == 403
        assert shared(service, link["token"], "pw") == NULL
