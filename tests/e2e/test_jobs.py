"""Jobs and events across real processes (PostgreSQL + moto S3): separate app and worker
processes, subscriptions and revocations heard by every app (also after the listener's connection
died), a worker killed mid-job, retries with backoff, then FAILED with a reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.support import live
from tests.support.documents import CREATE, MEDIA, REVOKE, REVOKE_LINK, SHARED
from tests.support.media_files import MediaFiles
from tests.support.processes import Proc, Stack, StallingRelay, started
from tests.support.scrape import sample
from tests.support.uploads import subject

pytestmark = pytest.mark.postgres

STALL_S = 3.0


def graphql(url: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    """One GraphQL request that must succeed; its data."""
    answer = httpx.post(
        f"{url}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


def create(url: str, token: str, path: Path, media_type: str) -> dict[str, Any]:
    """createUpload for the file at `path`; the ticket."""
    size = path.stat().st_size
    variables = {"input": {"fileName": path.name, "mediaType": media_type, "sizeBytes": size}}
    ticket: dict[str, Any] = graphql(url, CREATE, variables, token)["createUpload"]
    return ticket


def send(ticket: dict[str, Any], path: Path) -> None:
    """The PUT of the ticket: 202 at once."""
    headers = {item["name"]: item["value"] for item in ticket["headers"]}
    answer = httpx.put(ticket["uploadUrl"], content=path.read_bytes(), headers=headers, timeout=60)
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "IN_PROGRESS"


def upload(url: str, token: str, path: Path, media_type: str) -> str:
    """createUpload and the PUT; the media id."""
    ticket = create(url, token, path, media_type)
    send(ticket, path)
    media_id: str = ticket["media"]["id"]
    return media_id


def settled(url: str, token: str, media_id: str, timeout_s: float) -> dict[str, Any]:
    """media(id) once it left IN_PROGRESS; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        media: dict[str, Any] = graphql(url, MEDIA, {"id": media_id}, token)["media"]
        if media["status"] != "IN_PROGRESS":
            return media
        assert time.monotonic() < deadline, media
        time.sleep(0.05)


def query(database_url: str, sql: str, *args: Any) -> list[Any]:
    """The first column of every row of one query."""

    async def run() -> list[Any]:
        connection = await asyncpg.connect(database_url, timeout=5)
        try:
            return [row[0] for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    return anyio.run(run)


def jobs(database_url: str, status: str) -> int:
    """How many processing jobs are in `status` (procrastinate's own table)."""
    sql = "SELECT count(*) FROM procrastinate_jobs WHERE status::text = $1"
    found: int = query(database_url, sql, status)[0]
    return found


def wait_for_jobs(database_url: str, status: str, count: int, timeout_s: float = 15) -> None:
    """Poll until `count` jobs are in `status`."""
    deadline = time.monotonic() + timeout_s
    while jobs(database_url, status) != count:
        assert time.monotonic() < deadline, f"no {count} job(s) {status}"
        time.sleep(0.05)


def through(stack: Stack, relay: StallingRelay, **extra: str) -> dict[str, str]:
    """The stack's environment with storage reached through `relay`."""
    endpoint = stack.env["MEDIA_STORAGE_URL"].split("endpoint_url=")[1].split("&")[0]
    relayed = endpoint.rsplit(":", 1)[0] + f":{relay.port}"
    return stack.with_env(
        MEDIA_STORAGE_URL=stack.env["MEDIA_STORAGE_URL"].replace(endpoint, relayed), **extra
    )


def s3_port(stack: Stack) -> int:
    """The moto server's port."""
    endpoint = stack.env["MEDIA_STORAGE_URL"].split("endpoint_url=")[1].split("&")[0]
    return int(endpoint.rsplit(":", 1)[1])


def test_apps_enqueue_a_separate_worker_processes_and_every_app_hears_of_it(
    stack: Stack, tmp_path: Path, media_files: MediaFiles
) -> None:
    # Caches that would hide a revocation for a minute without events.
    web = stack.with_env(MEDIA_IN_PROCESS_WORKER="false", MEDIA_STREAM_CACHE_S="60")
    token = stack.token(subject())
    with started(Proc.app(web, tmp_path / "a.log"), Proc.app(web, tmp_path / "b.log")) as apps:
        first, second = (app.url for app in apps)
        ticket = create(first, token, media_files.png, "image/png")
        with live.socket(second, token) as ws:
            live.acknowledged(ws)
            live.subscribe(ws, ticket["media"]["id"])  # on the other app than the upload
            assert live.statuses_until(ws, "IN_PROGRESS") == ["IN_PROGRESS"]
            send(ticket, media_files.png)
            # No worker anywhere yet: the job waits in the queue, the media stays IN_PROGRESS.
            assert jobs(stack.database_url, "todo") == 1
            assert sample(first, "media_jobs_queued", queue="media") == 1
            with started(Proc.worker(stack.env, tmp_path / "worker.log")):
                assert live.statuses(ws) == ["SUCCESS"]
        media_id = ticket["media"]["id"]
        media = graphql(second, MEDIA, {"id": media_id}, token)["media"]
        assert httpx.get(media["streamUrl"]["url"]).content == media_files.png.read_bytes()
        assert jobs(stack.database_url, "todo") == jobs(stack.database_url, "doing") == 0

        refused_within_a_second(first, second, token, media_id)
        # The listeners' connections die; each reconnects (with a flush) and hears again.
        before = listener_pids(stack.database_url)
        assert len(before) == 2
        terminate(stack.database_url, before)
        wait_until(lambda: len(set(listener_pids(stack.database_url)) - set(before)) == 2)
        refused_within_a_second(first, second, token, media_id)
        link_refused_within_a_second(first, second, token, media_id)
        assert sample(first, "media_listener_reconnects_total") >= 1
        assert sample(second, "media_listener_reconnects_total") >= 1


def test_serve_with_workers_forks_apps_each_with_its_listener_and_worker(
    stack: Stack, tmp_path: Path, media_files: MediaFiles
) -> None:
    token = stack.token(subject())
    with started(Proc.app(stack.env, tmp_path / "app.log", "--workers", "2")) as (app,):
        # One listener connection per process: both processes are up and listening.
        wait_until(lambda: len(listener_pids(stack.database_url)) == 2, timeout_s=60)
        ticket = create(app.url, token, media_files.png, "image/png")
        with live.socket(app.url, token) as ws:
            live.acknowledged(ws)
            live.subscribe(ws, ticket["media"]["id"])
            assert live.statuses_until(ws, "IN_PROGRESS") == ["IN_PROGRESS"]
            send(ticket, media_files.png)  # whichever process answers, a job worker runs it
            assert live.statuses(ws) == ["SUCCESS"]
        # One /metrics for both processes: whichever answers a scrape reports their sum.
        healthz = {"route": "/healthz", "method": "GET", "status": "200"}
        time.sleep(1.5)  # each process writes its counts within a second
        before = sample(app.url, "media_http_requests_total", **healthz)
        for _ in range(20):
            assert httpx.get(f"{app.url}/healthz").status_code == 200
        time.sleep(1.5)  # each process writes its counts within a second
        for _ in range(3):
            assert sample(app.url, "media_http_requests_total", **healthz) - before == 20


def refused_within_a_second(revoker: str, reader: str, token: str, media_id: str) -> None:
    """A URL the reader has just served (and cached) stops working there within a second of a
    revocation on the other app."""
    url = graphql(reader, MEDIA, {"id": media_id}, token)["media"]["streamUrl"]["url"]
    reader_url = reader + url[url.index("/media/") :]
    assert httpx.get(reader_url).status_code == 200  # cached by the reader now
    graphql(revoker, REVOKE, {"id": media_id}, token)
    revoked = time.monotonic()
    while (status := httpx.get(reader_url).status_code) == 200:
        assert time.monotonic() - revoked < 1.0, "the other app still serves a revoked URL"
        time.sleep(0.02)
    assert status == 403


SHARE = (
    "mutation($id: ID!) { createShareLink(input: {mediaIds: [$id], expiresIn: 3600}) { id token } }"
)


def link_refused_within_a_second(revoker: str, reader: str, token: str, media_id: str) -> None:
    """A URL minted through a share link, served (and its link cached) by the reader, stops
    working there within a second of the link's revocation on the other app."""
    link = graphql(revoker, SHARE, {"id": media_id}, token)["createShareLink"]
    answer = httpx.post(
        f"{reader}/graphql", json={"query": SHARED, "variables": {"token": link["token"]}}
    )
    url = answer.json()["data"]["sharedMedia"]["medias"][0]["streamUrl"]["url"]
    reader_url = reader + url[url.index("/media/") :]
    assert httpx.get(reader_url).status_code == 200  # the link's grant is cached by the reader now
    assert graphql(revoker, REVOKE_LINK, {"id": link["id"]}, token)["revokeShareLink"] is True
    revoked = time.monotonic()
    while (status := httpx.get(reader_url).status_code) == 200:
        assert time.monotonic() - revoked < 1.0, "the other app still serves a revoked link's URL"
        time.sleep(0.02)
    assert status == 403


def listener_pids(database_url: str) -> list[int]:
    """Backends of the apps' event listeners."""
    return query(
        database_url,
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'media-service-events'"
        " AND datname = current_database()",
    )


def terminate(database_url: str, pids: list[int]) -> None:
    """pg_terminate_backend each of `pids`."""
    for pid in pids:
        query(database_url, f"SELECT pg_terminate_backend({int(pid)})")


def wait_until(check: Callable[[], bool], timeout_s: float = 15) -> None:
    """Poll `check` until it holds."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_worker_killed_mid_job_is_replaced_within_the_stall_time(
    stack: Stack, tmp_path: Path, media_files: MediaFiles
) -> None:
    relay = StallingRelay(s3_port(stack))
    timing = {"MEDIA_JOB_STALL_S": str(STALL_S), "MEDIA_JOB_RETRY_S": "1"}
    web = stack.with_env(MEDIA_IN_PROCESS_WORKER="false", **timing)
    # The first worker's storage goes silent after start-up: its job hangs mid-download.
    stuck = through(stack, relay, MEDIA_STORAGE_TIMEOUT_S="300", **timing)
    token = stack.token(subject())
    try:
        with started(
            Proc.app(web, tmp_path / "app.log"), Proc.worker(stuck, tmp_path / "stuck.log")
        ) as (app, doomed):
            relay.mode = "silent"
            media_id = upload(app.url, token, media_files.jpeg, "image/jpeg")
            wait_for_jobs(stack.database_url, "doing", 1)
            with started(Proc.worker(stack.with_env(**timing), tmp_path / "rescuer.log")):
                doomed.kill()
                killed = time.monotonic()
                media = settled(app.url, token, media_id, timeout_s=STALL_S + 10)
                elapsed = time.monotonic() - killed
    finally:
        relay.close()
    assert media["status"] == "SUCCESS", media
    assert elapsed < STALL_S + 2, elapsed  # detected, re-fetched and processed
    assert "retrying 1 job(s) of stopped workers" in (tmp_path / "rescuer.log").read_text()


def test_an_outage_is_retried_with_backoff_then_fails_with_a_reason(
    stack: Stack, tmp_path: Path, media_files: MediaFiles
) -> None:
    relay = StallingRelay(s3_port(stack))
    web = stack.with_env(MEDIA_IN_PROCESS_WORKER="false")
    cut_off = through(stack, relay, MEDIA_JOB_RETRY_S="1")
    token = stack.token(subject())
    try:
        with started(
            Proc.app(web, tmp_path / "app.log"), Proc.worker(cut_off, tmp_path / "worker.log")
        ) as (app, _):
            relay.mode = "refuse"  # every storage request of the worker fails from now on
            begun = time.monotonic()
            media_id = upload(app.url, token, media_files.png, "image/png")
            media = settled(app.url, token, media_id, timeout_s=30)
            elapsed = time.monotonic() - begun
    finally:
        relay.close()
    assert media["status"] == "FAILED", media
    assert media["failureReason"] == "processing failed, try again"
    assert media["streamUrl"] is None
    assert elapsed >= 1 + 2  # waits of 1 s, then 2 s, between the three attempts
    log = (tmp_path / "worker.log").read_text()
    assert log.count("met an outage") == 2, log  # the third attempt was the last
