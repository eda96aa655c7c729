"""mediaUpdated over a real WebSocket (graphql-transport-ws) and graphql-sse, both shapes."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from media.ids import new_media_id
from tests.support.app import RunningService
from tests.support.clock import ManualClock
from tests.support.documents import REVOKE, SUBJECT
from tests.support.live import acknowledged, messages, socket, sse_events, statuses, subscribe
from tests.support.media_files import MediaFiles
from tests.support.sharing import clocked_embedded
from tests.support.uploads import put, subject, ticket_for


def test_websocket_sees_the_current_state_then_success(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    ticket = ticket_for(service, token, media_files.png, "image/png")
    with socket(service.url, token) as ws:
        acknowledged(ws)
        subscribe(ws, ticket["mediaId"])
        first = next(messages(ws))
        assert first["type"] == "next"
        assert first["payload"]["data"]["mediaUpdated"]["status"] == "IN_PROGRESS"
        assert put(ticket, media_files.png.read_bytes()).status_code == 202
        assert statuses(ws) == ["SUCCESS"]  # then `complete`


def test_websocket_of_a_finished_media_sends_it_and_completes(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    ticket = ticket_for(service, token, media_files.garbage, "image/png")
    assert put(ticket, media_files.garbage.read_bytes()).status_code == 202
    with socket(service.url, token) as ws:
        acknowledged(ws)
        subscribe(ws, ticket["mediaId"])
        seen = statuses(ws)
    assert seen[-1] == "FAILED" and set(seen) <= {"IN_PROGRESS", "FAILED"}


@pytest.mark.parametrize("token", [None, "not-a-jwt"])
def test_websocket_without_a_valid_token_is_closed(
    module_service: RunningService, token: str | None
) -> None:
    with socket(module_service.url, token) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


def test_another_users_media_is_not_found_like_an_absent_one(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service = module_service
    owner, other = service.token(subject()), service.token(subject())
    ticket = ticket_for(service, owner, media_files.png, "image/png")
    answers = []
    with socket(service.url, other) as ws:
        acknowledged(ws)
        for op, media_id in (("1", ticket["mediaId"]), ("2", new_media_id())):
            subscribe(ws, media_id, op)
            found = list(messages(ws))
            answers.append(json.dumps([{k: v for k, v in m.items() if k != "id"} for m in found]))
    assert answers[0] == answers[1]  # nothing tells the two apart
    assert "NOT_FOUND" in answers[0] and "IN_PROGRESS" not in answers[0]


def test_sse_sees_the_current_state_then_success(
    module_service: RunningService, media_files: MediaFiles
) -> None:
    service, token = module_service, module_service.token(subject())
    ticket = ticket_for(service, token, media_files.png, "image/png")
    events = sse_events(service.url, token, ticket["mediaId"])
    event, data = next(events)
    assert event == "next" and data["data"]["mediaUpdated"]["status"] == "IN_PROGRESS"
    assert put(ticket, media_files.png.read_bytes()).status_code == 202
    rest = list(events)
    assert [data["data"]["mediaUpdated"]["status"] for event, data in rest if event == "next"] == [
        "SUCCESS"
    ]
    assert rest[-1][0] == "complete"


def test_a_websocket_serves_nothing_once_its_token_has_expired(
    tmp_path: Path, media_files: MediaFiles
) -> None:
    clock = ManualClock()
    with clocked_embedded(tmp_path, clock) as service:
        owner = subject()
        ticket = ticket_for(service, service.token(owner), media_files.png, "image/png")
        token = service.token(owner)  # valid for an hour, plus the leeway
        with socket(service.url, token) as ws:
            acknowledged(ws)
            subscribe(ws, ticket["mediaId"], "watch")
            first = next(messages(ws))
            assert first["payload"]["data"]["mediaUpdated"]["status"] == "IN_PROGRESS"
            time.sleep(2.5)  # so the next token outlives the socket's by two seconds or more
            fresh = service.token(owner)
            # Past the socket's token and the leeway, not past the fresh one's.
            assert _expiry(fresh) >= _expiry(token) + 2
            clock.now = datetime.fromtimestamp(_expiry(token) + 30 + 1, UTC)
            query = {"query": SUBJECT, "variables": {}}
            ws.send(json.dumps({"id": "late", "type": "subscribe", "payload": query}))
            late = list(messages(ws))
            assert late[0]["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            # The running subscription ends at its next event instead of delivering it.
            revoked = service.graphql(REVOKE, {"id": ticket["mediaId"]}, token=fresh)
            assert "errors" not in revoked, revoked
            watch = list(messages(ws))
            errors = [e for m in watch for e in m.get("payload", {}).get("errors", [])]
            assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"], watch


def _expiry(token: str) -> int:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["exp"])


def test_websockets_take_at_most_half_of_the_connection_slots(tmp_path: Path) -> None:
    with clocked_embedded(tmp_path, ManualClock(), MEDIA_MAX_CONCURRENCY="8") as service:
        token = service.token(subject())
        with contextlib.ExitStack() as held:
            for _ in range(4):
                acknowledged(held.enter_context(socket(service.url, token)))
            with pytest.raises(InvalidStatus) as refused, socket(service.url, token):
                pass
            assert refused.value.response.status_code == 403
            assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200
        with socket(service.url, token) as again:  # slots come back as sockets close
            acknowledged(again)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ('subscription { mediaUpdated(id: "x") { id ', "GRAPHQL_PARSE_FAILED"),
        ("subscription { " + "__typename " * 2100 + "}", "GRAPHQL_PARSE_FAILED"),
    ],
)
def test_a_document_that_does_not_parse_is_an_error_with_its_code(
    module_service: RunningService, document: str, code: str
) -> None:
    with socket(module_service.url, module_service.token(subject())) as ws:
        acknowledged(ws)
        payload = {"query": document, "variables": {}}
        ws.send(json.dumps({"id": "bad", "type": "subscribe", "payload": payload}))
        answer = list(messages(ws))
    assert answer[0]["type"] == "error", answer
    assert [e["extensions"]["code"] for e in answer[0]["payload"]] == [code]
