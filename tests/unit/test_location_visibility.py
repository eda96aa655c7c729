"""Where a media was taken is for its owner and admins only."""

from __future__ import annotations

from datetime import UTC, datetime

from media.models import ANONYMOUS, Media, MediaKind, MediaStatus, Owner, Principal


def test_location_is_never_shown_to_anonymous_callers_or_other_users() -> None:
    owner = Owner("alice", "https://issuer")
    media = Media(
        id="AAAAAAAAAAAAAAAAAAAAAA",
        name="x",
        media_type="image/jpeg",
        kind=MediaKind.IMAGE,
        status=MediaStatus.SUCCESS,
        storage_key="k",
        url_generation=0,
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        updated_at=datetime(2024, 1, 1, tzinfo=UTC),
        owner=owner,
    )

    def caller(subject: str, *scopes: str) -> Principal:
        return Principal(subject=subject, issuer="https://issuer", scopes=frozenset(scopes))

    assert media.shows_location_to(caller("alice", "user"))
    assert media.shows_location_to(caller("root", "admin"))
    assert not media.shows_location_to(caller("bob", "user"))
    assert not media.shows_location_to(ANONYMOUS)  # what a share link renders as
    assert not media.shows_location_to(caller("alice", "anonymous"))
