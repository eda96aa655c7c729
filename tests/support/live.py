"""Clients of the mediaUpdated subscription: graphql-transport-ws (WebSocket) and graphql-sse."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.support.documents import SUBSCRIBE

PROTOCOL = "graphql-transport-ws"
WAIT_S = 20.0


@contextlib.contextmanager
def socket(base_url: str, token: str | None) -> Iterator[ClientConnection]:
    """A graphql-transport-ws connection, initialised with the bearer token (when given)."""
    url = base_url.replace("http://", "ws://", 1) + "/graphql"
    with connect(url, subprotocols=[PROTOCOL], open_timeout=10) as ws:  # type: ignore[list-item]
        payload = {"Authorization": f"Bearer {token}"} if token is not None else {}
        ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        yield ws


def acknowledged(ws: ClientConnection) -> None:
    """Wait for connection_ack."""
    assert json.loads(ws.recv(timeout=WAIT_S))["type"] == "connection_ack"


def subscribe(ws: ClientConnection, media_id: str, op: str = "1") -> None:
    """Start mediaUpdated(id) as operation `op`."""
    message = {"id": op, "type": "subscribe", "payload": {"query": SUBSCRIBE, "variables": {}}}
    message["payload"]["variables"] = {"id": media_id}
    ws.send(json.dumps(message))


def messages(ws: ClientConnection, deadline_s: float = WAIT_S) -> Iterator[dict[str, Any]]:
    """Messages (pings answered) until `complete` or `error`, within `deadline_s` in all."""
    deadline = time.monotonic() + deadline_s
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "ping":
            ws.send(json.dumps({"type": "pong"}))
            continue
        yield message
        if message["type"] in ("complete", "error"):
            return


def statuses_until(ws: ClientConnection, wanted: str) -> list[str]:
    """The status of every `next` up to the first that is `wanted`."""
    found = []
    for message in messages(ws):
        assert message["type"] == "next", message
        found.append(message["payload"]["data"]["mediaUpdated"]["status"])
        if found[-1] == wanted:
            return found
    raise AssertionError(found)


def statuses(ws: ClientConnection) -> list[str]:
    """The status of every `next` until the subscription completes."""
    found = []
    for message in messages(ws):
        if message["type"] == "next":
            assert "errors" not in message["payload"], message
            found.append(message["payload"]["data"]["mediaUpdated"]["status"])
    return found


def sse_events(base_url: str, token: str, media_id: str) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs of a graphql-sse subscription until `complete`."""
    body = {"query": SUBSCRIBE, "variables": {"id": media_id}}
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    with httpx.stream(
        "POST", f"{base_url}/graphql", json=body, headers=headers, timeout=WAIT_S
    ) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in answer.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                text = line.split(":", 1)[1].strip()
                yield event, json.loads(text) if text else None
                if event == "complete":
                    return
            elif not line and event == "complete":
                yield event, None
                return
