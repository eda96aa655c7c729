"""The upload flow as a client drives it: createUpload, PUT, completeUpload once processed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.app import RunningService
from tests.support.documents import COMPLETE, CREATE

SETTLE_TIMEOUT_S = 15.0


def upload_file(
    service: RunningService,
    token: str,
    path: Path,
    media_type: str,
    *,
    settle_timeout_s: float = SETTLE_TIMEOUT_S,
) -> dict[str, Any]:
    """Upload one file and return the completed media; asserts every step succeeded.

    `settle_timeout_s` bounds the wait for processing (an HLS ladder takes longer)."""
    data = path.read_bytes()
    created = service.graphql(
        CREATE,
        {"input": {"fileName": path.name, "mediaType": media_type, "sizeBytes": len(data)}},
        token=token,
    )
    assert "errors" not in created, created
    ticket = created["data"]["createUpload"]
    assert ticket["media"]["status"] == "IN_PROGRESS"
    headers = {item["name"]: item["value"] for item in ticket["headers"]}
    put = httpx.request(
        ticket["method"], ticket["uploadUrl"], content=data, headers=headers, timeout=60
    )
    assert put.status_code == 202, put.text
    assert put.json()["status"] == "IN_PROGRESS"
    deadline = time.monotonic() + settle_timeout_s
    while True:  # the processing job runs in the server after the 202
        done = service.graphql(COMPLETE, {"id": ticket["uploadId"]}, token=token)
        assert "errors" not in done, done
        media: dict[str, Any] = done["data"]["completeUpload"]
        if media["status"] != "IN_PROGRESS":
            break
        assert time.monotonic() < deadline, media
        time.sleep(0.05)
    assert media["status"] == "SUCCESS", media
    media["uploadId"] = ticket["uploadId"]
    media["uploadUrl"] = ticket["uploadUrl"]
    media["uploadHeaders"] = headers
    return media
