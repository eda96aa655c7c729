"""Multipart uploads over real HTTP on both shapes (local folder and moto S3)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.app import RunningService, embedded_service_at
from tests.support.documents import ABORT, SIGN_PARTS
from tests.support.multipart import (
    MiB,
    complete,
    create_multipart,
    make_noise_png,
    ok,
    part_of,
    put_part,
    received,
    settled,
    sha256_hex,
    sign,
)
from tests.support.uploads import settled_state, stored_objects, subject, tampered

PART = 5 * MiB


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """About 13 MB of valid PNG: three parts of 5 MiB, the last one shorter."""
    return make_noise_png(tmp_path_factory.mktemp("big") / "big.png").read_bytes()


def _no_leftovers(service: RunningService) -> set[str]:
    """Stored objects that are neither a finished object nor anything else: temp files, uploads."""
    return {name for name in stored_objects(service.settings) if "tmp" in name or ":" in name}


def test_parts_out_of_order_replaced_and_resumed_after_a_restart(
    module_service: RunningService, big_png: bytes
) -> None:
    service, token = module_service, module_service.token(subject())
    upload = create_multipart(service, token, big_png, sha256=sha256_hex(big_png))
    upload_id = upload["uploadId"]
    assert (upload["partSize"], upload["partCount"]) == (PART, 3)
    assert upload["sizeBytes"] == len(big_png) and upload["receivedParts"] == []
    urls = sign(service, token, upload_id, [3, 1])
    assert urls[3]["sizeBytes"] == len(big_png) - 2 * PART and urls[1]["sizeBytes"] == PART
    assert urls[1]["method"] == "PUT"
    last = put_part(urls[3], part_of(big_png, PART, 3))
    assert last.status_code == 200, last.text
    assert last.json()["partNumber"] == 3 and last.headers["etag"].strip('"') == last.json()["etag"]
    # A wrong part 1, then the right one: the second replaces the first.
    assert put_part(urls[1], bytes(PART)).status_code == 200
    assert put_part(urls[1], part_of(big_png, PART, 1)).status_code == 200

    # The client restarts: it knows only the upload id, asks what arrived, sends the rest.
    assert received(service, token, upload_id) == [1, 3]
    missing = complete(service, token, upload_id)
    assert missing["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "parts missing: 2" in missing["errors"][0]["message"]
    urls = sign(service, token, upload_id, [2])
    assert put_part(urls[2], part_of(big_png, PART, 2)).status_code == 200
    media = settled(service, token, upload_id)
    assert media["status"] == "SUCCESS", media
    assert media["sizeBytes"] == len(big_png)
    # The original is kept byte for byte (the stream is a preview of this large picture).
    downloaded = httpx.get(media["downloadUrl"]["url"], timeout=60)
    assert sha256_hex(downloaded.content) == sha256_hex(big_png) == media["sha256"]
    assert settled(service, token, upload_id)["status"] == "SUCCESS"
    assert _no_leftovers(service) == set()
    # The upload is done: a part sent now is refused, and the resume query lists nothing.
    assert put_part(urls[2], part_of(big_png, PART, 2)).status_code == 409
    assert received(service, token, upload_id) == []
    # Aborting it now is a CONFLICT (its media stays), not a quiet false.
    late = service.graphql(ABORT, {"id": upload_id}, token=token)
    assert late["errors"][0]["extensions"]["code"] == "CONFLICT", late
    assert settled(service, token, upload_id)["status"] == "SUCCESS"


def test_part_sizes_are_exact(module_service: RunningService, big_png: bytes) -> None:
    service, token = module_service, module_service.token(subject())
    upload = create_multipart(service, token, big_png)
    part = sign(service, token, upload["uploadId"], [1])[1]
    short = put_part(part, bytes(PART - 1))
    assert short.status_code == 400 and "under the part size" in short.json()["message"]
    long = put_part(part, bytes(PART + 1))
    assert long.status_code == 413 and "over the part size" in long.json()["message"]

    def chunked() -> Any:
        yield bytes(PART)

    assert httpx.put(part["url"], content=chunked(), timeout=60).status_code == 411
    assert received(service, token, upload["uploadId"]) == []
    refused = put_part({"url": tampered(part["url"])}, bytes(PART))
    assert refused.status_code == 403 and refused.json() == {"error": "forbidden"}
    assert ok(service.graphql(ABORT, {"id": upload["uploadId"]}, token=token), "abortUpload")


def test_a_wrong_sha256_fails_the_media_and_keeps_nothing(
    module_service: RunningService, big_png: bytes
) -> None:
    service, token = module_service, module_service.token(subject())
    upload = create_multipart(service, token, big_png, sha256="0" * 64)
    urls = sign(service, token, upload["uploadId"], [1, 2, 3])
    for number, part in urls.items():
        assert put_part(part, part_of(big_png, PART, number)).status_code == 200
    media = settled(service, token, upload["uploadId"])
    assert (media["status"], media["failureReason"]) == ("FAILED", "sha256 does not match")
    assert stored_objects(service.settings) <= _finished_objects(service)


def _finished_objects(service: RunningService) -> set[str]:
    return {
        name for name in stored_objects(service.settings) if "tmp" not in name and ":" not in name
    }


def test_abort_frees_everything_and_later_parts_are_refused(
    module_service: RunningService, big_png: bytes
) -> None:
    service, token = module_service, module_service.token(subject())
    upload = create_multipart(service, token, big_png)
    urls = sign(service, token, upload["uploadId"], [1, 2])
    assert put_part(urls[1], part_of(big_png, PART, 1)).status_code == 200
    assert ok(service.graphql(ABORT, {"id": upload["uploadId"]}, token=token), "abortUpload")
    assert not ok(service.graphql(ABORT, {"id": upload["uploadId"]}, token=token), "abortUpload")
    late = put_part(urls[2], part_of(big_png, PART, 2))
    assert late.status_code == 409 and late.json() == {"error": "conflict"}
    state = settled_state(service, token, upload["media"]["id"])
    assert (state["status"], state["failureReason"]) == ("FAILED", "upload aborted")
    assert _no_leftovers(service) == set()
    stranger = service.token(subject())
    other = service.graphql(ABORT, {"id": upload["uploadId"]}, token=stranger)
    assert other["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("part_size", "words"),
    [(4 * MiB, "at least"), (5 * MiB + 1, "multiple of 1048576"), (6 * 1024 * MiB, "at most")],
)
def test_part_size_rules(
    module_service: RunningService, big_png: bytes, part_size: int, words: str
) -> None:
    service, token = module_service, module_service.token(subject())
    answer = service.graphql(
        """mutation($input: CreateUploadInput!, $p: Float) {
          createMultipartUpload(input: $input, partSize: $p) { uploadId } }""",
        {
            "input": {"fileName": "x.png", "mediaType": "image/png", "sizeBytes": 10**9},
            "p": part_size,
        },
        token=token,
    )
    error = answer["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and words in error["message"]
    assert error["extensions"]["field"] == "partSize"


def test_default_part_size_and_signing_limits(module_service: RunningService) -> None:
    service, token = module_service, module_service.token(subject())
    upload = create_multipart(service, token, b"", part_size=None, declared=10**9)
    assert (upload["partSize"], upload["partCount"]) == (8 * MiB, 120)
    upload_id = upload["uploadId"]
    too_many = service.graphql(
        SIGN_PARTS, {"id": upload_id, "numbers": list(range(1, 102))}, token=token
    )
    assert too_many["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "partNumbers",
        "limit": 100,
    }
    for numbers in ([0], [121]):
        bad = service.graphql(SIGN_PARTS, {"id": upload_id, "numbers": numbers}, token=token)
        assert bad["errors"][0]["extensions"]["field"] == "partNumbers", bad
    assert len(sign(service, token, upload_id, list(range(1, 101)))) == 100
    assert sign(service, token, upload_id, [120])[120]["sizeBytes"] == 10**9 - 119 * 8 * MiB
    assert ok(service.graphql(ABORT, {"id": upload_id}, token=token), "abortUpload")


def test_quota_counts_a_multipart_upload_once_and_abort_frees_it(
    tmp_path: Path, big_png: bytes
) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_MAX_PENDING_UPLOADS="2") as service:
        token = service.token(subject())
        first = create_multipart(service, token, big_png)
        urls = sign(service, token, first["uploadId"], [1, 2, 3])
        assert put_part(urls[1], part_of(big_png, PART, 1)).status_code == 200
        create_multipart(service, token, big_png)
        refused = service.graphql(
            """mutation($input: CreateUploadInput!) { createMultipartUpload(input: $input) {
              uploadId } }""",
            {"input": {"fileName": "x.png", "mediaType": "image/png", "sizeBytes": 10}},
            token=token,
        )
        assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert ok(service.graphql(ABORT, {"id": first["uploadId"]}, token=token), "abortUpload")
        assert create_multipart(service, token, big_png)["partCount"] == 3


def test_a_stalled_part_is_cut_with_408_and_the_upload_goes_on(
    tmp_path: Path, big_png: bytes
) -> None:
    # One second of real waiting: the idle timer runs inside the server, out of reach of a clock.
    with embedded_service_at(tmp_path / "data", MEDIA_UPLOAD_IDLE_TIMEOUT_S="1") as service:
        token = service.token(subject())
        upload = create_multipart(service, token, big_png)
        urls = sign(service, token, upload["uploadId"], [1, 2, 3])
        url = urlsplit(urls[1]["url"])
        head = (
            f"PUT {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n"
            f"Content-Length: {PART}\r\n\r\n"
        ).encode()
        with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
            sock.sendall(head + part_of(big_png, PART, 1)[: PART // 2])  # then nothing more
            answer = sock.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 408"), answer
        assert received(service, token, upload["uploadId"]) == []
        for number, part in urls.items():
            assert put_part(part, part_of(big_png, PART, number)).status_code == 200
        media = settled(service, token, upload["uploadId"])
        assert media["status"] == "SUCCESS", media


def test_part_urls_answer_cors(module_service: RunningService, big_png: bytes) -> None:
    service, token = module_service, module_service.token(subject())
    upload = create_multipart(service, token, big_png)
    part = sign(service, token, upload["uploadId"], [1])[1]
    preflight = httpx.options(
        part["url"],
        headers={"Origin": "http://app.example", "Access-Control-Request-Method": "PUT"},
    )
    assert (
        preflight.status_code == 204 and "PUT" in preflight.headers["access-control-allow-methods"]
    )
    answer = put_part(part, part_of(big_png, PART, 1), Origin="http://app.example")
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "etag" in answer.headers["access-control-expose-headers"].lower()
    assert ok(service.graphql(ABORT, {"id": upload["uploadId"]}, token=token), "abortUpload")
