"""Scenario 6: processing as jobs on PostgreSQL. Time from an upload's last byte to SUCCESS with
the in-process worker and with a separate worker process; processing throughput with 1 and 2
worker processes (the 1-worker figure is the baseline of the 2-worker one)."""

from __future__ import annotations

import json
import secrets
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import av
import httpx
from PIL import Image
from websockets.sync.client import connect

from bench.procs import Proc, Processes, free_port, python, wait_http
from bench.report import Row
from bench.scenarios import Outcome, Plan
from bench.stack import Stack, _clean_env
from media.config import Settings, load_settings
from media.db import migrate
from server.lifecycle import dev_issuer

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CREATE = """mutation($input: CreateUploadInput!) {
  createUpload(input: $input) { uploadId uploadUrl headers { name value } media { id } } }"""
STATUS = "query($id: ID!) { media(id: $id) { status } }"
OPEN = "query { medias(first: 100, filter: {status: IN_PROGRESS}) { edges { node { id } } } }"
SUBSCRIBE = "subscription($id: ID!) { mediaUpdated(id: $id) { status } }"
WAIT_S = 300.0


def make_video(path: Path, seconds: int, height: int, fps: int = 30) -> Path:
    """An H.264 MP4 with its moov at the end, so processing must remux it to faststart."""
    width = height * 16 // 9
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(fps), "threads": "2"}
        for index in range(seconds * fps):
            shade = (index * 4) % 256
            image = Image.new("RGB", (width, height), (shade, 255 - shade, (index * 7) % 256))
            frame = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class Deployment:
    """A scratch PostgreSQL database and local storage shared by app and worker processes."""

    def __init__(self, procs: Processes, tmp: Path) -> None:
        self.procs = procs
        self.started: list[Proc] = []
        self.name = f"media_bench_{uuid.uuid4().hex[:12]}"
        self.port = free_port()
        self.env = {
            "MEDIA_DATA_DIR": str(tmp / "jobs"),
            "MEDIA_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.name}",
            "MEDIA_SIGNING_KEYS": secrets.token_hex(32),
            "MEDIA_ENV": "development",
            "MEDIA_LOG_LEVEL": "WARNING",
            "MEDIA_PROCESSING_WORKERS": "1",
            "MEDIA_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
        }
        self.settings: Settings = load_settings(self.env)
        anyio.run(_admin, f'CREATE DATABASE "{self.name}"')
        anyio.run(migrate, self.settings)
        issuer = dev_issuer(self.settings, str(self.settings.public_url))
        self.token = issuer.mint("bench", ["user"], audience=self.settings.oidc_audience)
        self.url = f"http://127.0.0.1:{self.port}"

    def serve(self, name: str, *, in_process: bool) -> Proc:
        """The app on the deployment's port."""
        env = {**self.env, "MEDIA_IN_PROCESS_WORKER": "true" if in_process else "false"}
        argv = python("-m", "server.cli", "serve", "--port", str(self.port))
        proc = self.procs.start(name, argv, _clean_env() | env)
        self.started.append(proc)
        wait_http(proc, f"{self.url}/readyz", timeout_s=120)
        return proc

    def worker(self, name: str) -> Proc:
        """One `media-service worker --concurrency 1`, once it works."""
        argv = python("-m", "server.cli", "worker", "--concurrency", "1")
        proc = self.procs.start(name, argv, _clean_env() | self.env)
        self.started.append(proc)
        deadline = time.monotonic() + 120
        while b"worker:" not in proc.log.read_bytes():
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{proc.tail()}")
            time.sleep(0.05)  # waiting for a starting process; not a measurement
        return proc

    def close(self) -> None:
        """Stop its processes (they hold connections), then remove the scratch database."""
        for proc in reversed(self.started):
            proc.stop()
        anyio.run(_admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """One GraphQL call that must succeed."""
        body = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        ).json()
        if body.get("errors"):
            raise RuntimeError(str(body["errors"])[:300])
        data: dict[str, Any] = body["data"]
        return data

    def put(self, video: Path) -> tuple[str, float]:
        """createUpload and the PUT; the media id and when the last byte left."""
        ticket, data = self._create(video)
        return ticket["media"]["id"], self._send(ticket, data)

    def _create(self, video: Path) -> tuple[dict[str, Any], bytes]:
        """The upload ticket for `video`, and its bytes."""
        data = video.read_bytes()
        variables = {
            "input": {"fileName": video.name, "mediaType": "video/mp4", "sizeBytes": len(data)}
        }
        ticket: dict[str, Any] = self.graphql(CREATE, variables)["createUpload"]
        return ticket, data

    @staticmethod
    def _send(ticket: dict[str, Any], data: bytes) -> float:
        """The PUT of `data` in 1 MiB pieces; when its last byte left."""
        headers = {item["name"]: item["value"] for item in ticket["headers"]}
        sent: list[float] = []

        def body() -> Iterator[bytes]:
            for start in range(0, len(data), 1 << 20):
                yield data[start : start + (1 << 20)]
            sent.append(time.monotonic())

        answer = httpx.put(ticket["uploadUrl"], content=body(), headers=headers, timeout=120)
        if answer.status_code != 202:
            raise RuntimeError(f"PUT answered {answer.status_code}: {answer.text[:200]}")
        return sent[0]

    def latency(self, video: Path) -> float:
        """Seconds from the last byte of an upload to the SUCCESS its subscription reports."""
        ticket, data = self._create(video)  # create, subscribe, then PUT: it needs the id
        ws_url = self.url.replace("http://", "ws://") + "/graphql"
        with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            init = {"Authorization": f"Bearer {self.token}"}
            ws.send(json.dumps({"type": "connection_init", "payload": init}))
            json.loads(ws.recv(timeout=30))
            subscribe = {"query": SUBSCRIBE, "variables": {"id": ticket["media"]["id"]}}
            ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
            json.loads(ws.recv(timeout=30))  # the current state: IN_PROGRESS
            sent = self._send(ticket, data)
            while True:
                message = json.loads(ws.recv(timeout=WAIT_S))
                if message["type"] != "next":
                    continue
                status = message["payload"]["data"]["mediaUpdated"]["status"]
                if status != "IN_PROGRESS":
                    done = time.monotonic()
                    if status != "SUCCESS":
                        raise RuntimeError(f"processing ended {status}")
                    return done - sent

    def throughput(self, video: Path, count: int) -> float:
        """Jobs per second: `count` uploads queued back to back, until all are SUCCESS."""
        uploads = [self.put(video) for _ in range(count)]
        started = uploads[0][1]
        deadline = time.monotonic() + WAIT_S
        # One listing query per poll: polling must not take the CPU the workers measure.
        while self.graphql(OPEN, {})["medias"]["edges"]:
            if time.monotonic() > deadline:
                raise RuntimeError("jobs did not finish")
            time.sleep(0.1)  # polling for completion; resolution far below the figure
        finished = time.monotonic()
        statuses = {
            self.graphql(STATUS, {"id": media_id})["media"]["status"] for media_id, _ in uploads
        }
        if statuses != {"SUCCESS"}:
            raise RuntimeError(f"jobs ended {statuses}")
        return count / (finished - started)


def run(plan: Plan, stack: Stack) -> Outcome:
    """Start the deployment's processes phase by phase and measure."""
    try:
        anyio.run(_admin, "SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        return Outcome(notes=[f"PostgreSQL not reachable ({exc}): jobs scenario skipped"])
    seconds, height = (5, 360) if plan.quick else (20, 720)
    rounds, batch = (2, 2) if plan.quick else (3, 6)
    video = make_video(stack.tmp / f"clip-{seconds}s-{height}p.mp4", seconds, height)
    deployment = Deployment(stack.procs, stack.tmp)
    label = f"6 jobs {seconds}s {height}p MP4"
    try:
        app = deployment.serve("jobs-app-inprocess", in_process=True)
        in_process = statistics.median(deployment.latency(video) for _ in range(rounds))
        app.stop()
        deployment.serve("jobs-app", in_process=False)
        first = deployment.worker("jobs-worker-1")
        separate = statistics.median(deployment.latency(video) for _ in range(rounds))
        one = deployment.throughput(video, batch)
        deployment.worker("jobs-worker-2")
        two = deployment.throughput(video, batch)
        first.stop()
    finally:
        deployment.close()
    return Outcome(
        rows=[
            Row(
                label,
                "last byte to SUCCESS, separate worker",
                "s",
                separate,
                {"in-process": in_process},
            ),
            Row(label, f"throughput, 2 workers ({batch} queued)", "jobs/s", two, {"1 worker": one}),
        ],
        notes=[f"jobs: {video.stat().st_size / 1e6:.1f} MB per upload; medians of {rounds}"],
    )
