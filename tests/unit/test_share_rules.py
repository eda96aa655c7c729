"""Share links in the core: link-bound URL claims, the grant check of the streaming path, and
the password form's signed field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from media.errors import InvalidSignature
from media.ids import new_media_id
from media.models import Purpose, ShareGrant, UrlClaims
from media.service.streams import check_grant
from media.signing import UrlSigner
from tests.support.clock import ManualClock

KEY = "share-key-" + "s" * 40
T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C = (new_media_id() for _ in range(3))


def claims(purpose: Purpose = Purpose.STREAM, media_id: str = A) -> UrlClaims:
    return UrlClaims(
        purpose=purpose,
        media_id=media_id,
        subject="",
        generation=0,
        expires_at=T0 + timedelta(hours=1),
        link_id="link-1",
    )


GRANT = ShareGrant(
    link_id="link-1",
    expires_at=T0 + timedelta(days=1),
    allow_download=False,
    media_ids=frozenset({A, B}),
)


def test_a_link_id_travels_in_the_signed_claims() -> None:
    signer = UrlSigner([KEY], clock=lambda: T0)
    token, _ = signer.sign(
        Purpose.STREAM, media_id=A, subject="", generation=3, ttl_s=60, link_id="abc_DEF-1"
    )
    assert signer.verify(token, {Purpose.STREAM}).link_id == "abc_DEF-1"
    plain, _ = signer.sign(Purpose.STREAM, media_id=A, subject="u", generation=3, ttl_s=60)
    assert signer.verify(plain, {Purpose.STREAM}).link_id is None


@pytest.mark.parametrize(
    ("grant", "url", "now", "allowed"),
    [
        (GRANT, claims(), T0, True),
        (GRANT, claims(media_id=B), T0, True),
        (None, claims(), T0, False),  # revoked: the link row is gone
        (GRANT, claims(), GRANT.expires_at, False),  # expired, to the second
        (GRANT, claims(), GRANT.expires_at - timedelta(seconds=1), True),
        (GRANT, claims(media_id=C), T0, False),  # not in the link (or removed by a delete)
        (GRANT, claims(Purpose.DOWNLOAD), T0, False),  # downloads not allowed
        (
            ShareGrant("link-1", GRANT.expires_at, True, GRANT.media_ids),
            claims(Purpose.DOWNLOAD),
            T0,
            True,
        ),
        (GRANT, claims(Purpose.THUMBNAIL), T0, True),
    ],
)
def test_grant_check(
    grant: ShareGrant | None, url: UrlClaims, now: datetime, allowed: bool
) -> None:
    if allowed:
        check_grant(url, grant, now)
    else:
        with pytest.raises(InvalidSignature):
            check_grant(url, grant, now)


def test_form_tokens_bind_subject_nonce_and_age() -> None:
    clock = ManualClock(T0)
    forms = UrlSigner([KEY], clock=clock).form_tokens()
    value = forms.issue("link-hash", "nonce-1")
    assert forms.check(value, "link-hash", "nonce-1", 3600)
    assert not forms.check(value, "other-link", "nonce-1", 3600)
    assert not forms.check(value, "link-hash", "nonce-2", 3600)
    assert not forms.check(value, "link-hash", "", 3600)
    assert not forms.check(value[:-2] + "xx", "link-hash", "nonce-1", 3600)
    assert not forms.check("x" * 5000, "link-hash", "nonce-1", 3600)
    other = UrlSigner(["other-" + KEY], clock=clock).form_tokens()
    assert not other.check(value, "link-hash", "nonce-1", 3600)
    clock.advance(3601)
    assert not forms.check(value, "link-hash", "nonce-1", 3600)
