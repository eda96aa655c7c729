"""NOTIFY payloads of events: media and link events round-trip; foreign payloads are ignored."""

from __future__ import annotations

import pytest

from media.listener import event_payload, parse_event
from media.models import MediaEvent, MediaEventKind


@pytest.mark.parametrize(
    "event",
    [
        MediaEvent(kind=MediaEventKind.STATUS.value, media_id="k3Jq9ZxYw2Lm4Np6Rt8VbA"),
        MediaEvent(kind=MediaEventKind.DELETED.value, media_id="k3Jq9ZxYw2Lm4Np6Rt8VbA"),
        MediaEvent(kind=MediaEventKind.LINK_REVOKED.value, media_id="", link_id="6nGDcS7VGxng451f"),
    ],
)
def test_events_round_trip(event: MediaEvent) -> None:
    assert parse_event(event_payload(event)) == event


def test_a_media_event_carries_no_link_field() -> None:
    payload = event_payload(MediaEvent(kind="revoked", media_id="k3Jq9ZxYw2Lm4Np6Rt8VbA"))
    assert payload == '{"kind":"revoked","media":"k3Jq9ZxYw2Lm4Np6Rt8VbA"}'


@pytest.mark.parametrize("payload", ["", "null", "[]", '{"kind":"status"}', "{not json"])
def test_foreign_payloads_are_ignored(payload: str) -> None:
    assert parse_event(payload) is None
