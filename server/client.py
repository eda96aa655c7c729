"""`media-service upload` and `media-service url`: a small client of the GraphQL flow."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from media.auth.dev_issuer import DevIssuer
from media.config import Settings
from media.errors import ConfigError
from media.processing.sniff import ALLOWED_TYPES, SNIFF_BYTES, sniff
from server import upload_client as parts

CHUNK = 256 * 1024
WAIT_LIMIT_S = 3600.0  # how long `upload` waits for processing (queued behind other jobs too)
CREATE = """mutation($input: CreateUploadInput!) {
  createUpload(input: $input) { uploadId uploadUrl method headers { name value } }
}"""
COMPLETE = """mutation($id: ID!) {
  completeUpload(uploadId: $id) { id status failureReason streamUrl { url expiresAt } }
}"""
URLS = """query($id: ID!) {
  media(id: $id) { id status streamUrl { url expiresAt } downloadUrl { url expiresAt } }
}"""
ACCEPTED = ", ".join(sorted(ALLOWED_TYPES))


class ClientError(Exception):
    """A failure to report on stderr with exit status 1."""


def run_client(settings: Settings, args: argparse.Namespace) -> int:
    """Run the upload or url command; 0 on success."""
    server = (args.server or settings.public_url or "http://127.0.0.1:8090").rstrip("/")
    try:
        with httpx.Client(base_url=server, timeout=httpx.Timeout(30, read=600)) as http:
            http.headers["Authorization"] = f"Bearer {_token(settings, http)}"
            if args.command == "upload":
                return _upload(http, args)
            return _url(http, args.media_id, download=args.download)
    except httpx.ConnectError:
        message = (
            f"cannot reach {server}: is `media-service serve` running there? "
            "(point --server or MEDIA_PUBLIC_URL at it)"
        )
    except (ClientError, parts.PartsFailed, httpx.HTTPError) as exc:
        message = str(exc) or type(exc).__name__
    print(f"media-service {args.command}: {message}", file=sys.stderr)
    return 1


def dev_issuer_for(settings: Settings, http: httpx.Client | None) -> DevIssuer:
    """The development issuer of this data directory, checked against the server when given;
    ClientError (saying what to do) when this folder has no key, or not the server's."""
    from server.lifecycle import dev_key_path, existing_dev_issuer

    try:
        issuer = existing_dev_issuer(settings)
    except ConfigError:
        raise ClientError(
            f"no development key at {dev_key_path(settings)}: run this from the folder where "
            "`media-service serve` runs, or set MEDIA_DATA_DIR to its data folder "
            "(or MEDIA_TOKEN to a bearer token)"
        ) from None
    if http is not None:
        response = http.get("/dev-oidc/jwks")
        kids = (
            [key.get("kid") for key in response.json().get("keys", [])]
            if response.is_success
            else []
        )
        if response.is_success and issuer.kid not in kids:
            raise ClientError(
                f"the server at {http.base_url} signs with another development key than "
                f"{dev_key_path(settings)}: run this from the server's folder, or set "
                "MEDIA_DATA_DIR to its data folder"
            )
    return issuer


def _token(settings: Settings, http: httpx.Client) -> str:
    if settings.client_token:
        return settings.client_token
    if not settings.uses_dev_issuer:
        raise ClientError("set MEDIA_TOKEN to a bearer token from your OIDC provider")
    issuer = dev_issuer_for(settings, http)
    return str(issuer.mint("dev-user", ["user"], audience=settings.oidc_audience))


def _graphql(http: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/graphql", json={"query": query, "variables": variables})
    if response.status_code == 404:
        raise ClientError(
            f"{response.url} answered 404: --server (or MEDIA_PUBLIC_URL) takes the service's "
            "base URL, like http://127.0.0.1:8090, without /graphql"
        )
    try:
        body = response.json()
    except ValueError:
        raise ClientError(f"HTTP {response.status_code}: not a GraphQL answer") from None
    if body.get("errors"):
        first = body["errors"][0]
        extensions = first.get("extensions", {})
        code = extensions.get("code", "ERROR")
        reason = f" ({extensions['reason']})" if extensions.get("reason") else ""
        raise ClientError(f"{code}{reason}: {first.get('message')}")
    if response.status_code != 200:
        raise ClientError(f"HTTP {response.status_code}")
    data: dict[str, Any] = body["data"]
    return data


def _upload(http: httpx.Client, args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise ClientError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise ClientError(f"{path} is empty: there is nothing to upload")
    with path.open("rb") as handle:
        # The content decides, not the name: a PNG called .jpg is still a PNG.
        media_type = sniff(handle.read(SNIFF_BYTES))
    if media_type is None:
        raise ClientError(f"{path}: not a media file the service accepts ({ACCEPTED})")
    fields = {"fileName": args.name or path.name, "mediaType": media_type, "sizeBytes": size}
    if args.resume or args.part_size is not None or size > parts.MULTIPART_THRESHOLD:
        upload_id = _upload_parts(http, path, fields, args.part_size, args.resume)
    else:
        upload_id = _upload_whole(http, path, fields)
    media = _wait(http, upload_id)
    if media["status"] != "SUCCESS":
        raise ClientError(f"media {media['id']} {media['status']}: {media.get('failureReason')}")
    print(media["id"])
    print(media["streamUrl"]["url"])
    return 0


def _wait(http: httpx.Client, upload_id: str) -> dict[str, Any]:
    """Ask completeUpload until processing ended, with a spinner on a terminal."""
    spinner = itertools.cycle("|/-\\")
    shown = sys.stderr.isatty()
    deadline = time.monotonic() + WAIT_LIMIT_S
    pause = 0.1
    while True:
        media: dict[str, Any] = _graphql(http, COMPLETE, {"id": upload_id})["completeUpload"]
        if media["status"] != "IN_PROGRESS":
            break
        if time.monotonic() > deadline:
            raise ClientError(f"media {media['id']} still processing; ask again with `url`")
        if shown:
            print(f"\rprocessing {next(spinner)}", end="", file=sys.stderr, flush=True)
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)  # quick for a small file, gentle for a long transcode
    if shown:
        print("\r" + " " * 16 + "\r", end="", file=sys.stderr, flush=True)
    return media


def _upload_whole(http: httpx.Client, path: Path, fields: dict[str, Any]) -> str:
    ticket = _graphql(http, CREATE, {"input": fields})["createUpload"]
    headers = {item["name"]: item["value"] for item in ticket["headers"]}
    # The signed URL is itself the credential: no Authorization header on the PUT.
    put = httpx.put(
        ticket["uploadUrl"],
        content=_read(path, fields["sizeBytes"]),
        headers=headers,
        timeout=httpx.Timeout(30, read=600),
    )
    if put.status_code != 202:
        raise ClientError(f"upload refused: HTTP {put.status_code} {put.text[:200]}")
    upload_id: str = ticket["uploadId"]
    return upload_id


def _upload_parts(
    http: httpx.Client,
    path: Path,
    fields: dict[str, Any],
    part_size: int | None,
    resume: str | None,
) -> str:
    """Send the parts the server lacks; on any stop, print how to resume."""

    def graphql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return _graphql(http, query, variables)

    upload_id = resume or parts.create(graphql, fields, part_size)["uploadId"]
    print(f"upload id: {upload_id}", file=sys.stderr, flush=True)
    try:
        size = fields["sizeBytes"]
        chosen, missing = parts.missing_parts(graphql, upload_id, size)
        sender = parts.PartSender(graphql, upload_id, path, chosen)
        sender.send(missing, parts.received_bytes(size, chosen, missing))
    except KeyboardInterrupt:
        print(parts.resume_hint(path, upload_id), file=sys.stderr, flush=True)
        raise ClientError("interrupted") from None
    except (ClientError, parts.PartsFailed, httpx.HTTPError):
        print(parts.resume_hint(path, upload_id), file=sys.stderr, flush=True)
        raise
    return upload_id


def _read(path: Path, size: int) -> Iterator[bytes]:
    bar = sys.stderr.isatty()
    sent = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sent += len(chunk)
            if bar:
                done = int(40 * sent / max(size, 1))
                print(
                    f"\r[{'#' * done}{'.' * (40 - done)}] {sent * 100 // max(size, 1):3d}%",
                    end="",
                    file=sys.stderr,
                )
            yield chunk
    if bar:
        print(file=sys.stderr)


def _url(http: httpx.Client, media_id: str, *, download: bool) -> int:
    media = _graphql(http, URLS, {"id": media_id})["media"]
    if media is None:
        raise ClientError(f"media {media_id} not found")
    signed = media["downloadUrl" if download else "streamUrl"]
    if signed is None:
        raise ClientError(f"media {media_id} is {media['status']}, nothing to stream")
    print(signed["url"])
    return 0
