"""mediaUpdated over a real WebSocket (graphql-transport-ws) and graphql-sse, both shapes."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed

from media.ids import new_media_id
from tests.support.app import RunningService
from tests.support.live import acknowledged, messages, socket, sse_events, statuses, subscribe
from tests.support.media_files import MediaFiles
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
