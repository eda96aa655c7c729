"""UrlSigner: purposes, tampering, expiry with an injected clock, key rotation, bounds."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from itsdangerous import URLSafeTimedSerializer

from media.config import UPLOAD_TTL_CAP_S, URL_TTL_CAP_S
from media.errors import ConfigError, InvalidSignature
from media.models import Purpose
from media.signing import MAX_URL_TOKEN_LENGTH, PREFIXES, SALTS, UrlSigner, _ClockedSigner, key_id
from tests.support.clock import ManualClock

OLD = "old-key-" + "o" * 40
NEW = "new-key-" + "n" * 40
T0 = datetime(2025, 5, 1, 10, 0, 0, tzinfo=UTC)
READS = (Purpose.STREAM, Purpose.DOWNLOAD, Purpose.THUMBNAIL)
MEDIA = "k3Jq9ZxYw2Lm4Np6Rt8VbA"  # a media id (media/ids.py)
OTHER = "Zz0_-9Yy8Xx7Ww6Vv5Uu4g"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def signer(clock: ManualClock) -> UrlSigner:
    return UrlSigner([OLD, NEW], clock=clock)


def sign(signer: UrlSigner, purpose: Purpose = Purpose.STREAM, ttl_s: int = 300) -> str:
    if purpose is Purpose.UPLOAD:
        token, _ = signer.sign(
            purpose,
            media_id=MEDIA,
            subject="alice",
            generation=2,
            ttl_s=ttl_s,
            upload_id=uuid4(),
            max_bytes=1000,
            content_type="video/mp4",
        )
    else:
        token, _ = signer.sign(purpose, media_id=MEDIA, subject="alice", generation=2, ttl_s=ttl_s)
    return token


def reason(signer: UrlSigner, token: str, purposes: tuple[Purpose, ...] = READS) -> str:
    with pytest.raises(InvalidSignature) as caught:
        signer.verify(token, purposes)
    assert "reason" not in str(caught.value)  # the message shown to clients names no check
    return str(caught.value.data["reason"])


def payload_of(token: str) -> dict[str, object]:
    segment = token.split(".", 1)[1].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


@pytest.mark.parametrize("purpose", list(Purpose))
def test_round_trip_per_purpose(signer: UrlSigner, purpose: Purpose) -> None:
    upload_id = uuid4()
    token, expires = signer.sign(
        purpose,
        media_id=MEDIA,
        subject="alice",
        generation=2,
        ttl_s=120,
        upload_id=upload_id,
        max_bytes=1000,
        content_type="video/mp4",
        part_number=3,
    )
    assert token.startswith(PREFIXES[purpose] + ".")
    claims = signer.verify(token, [purpose])
    assert (claims.purpose, claims.media_id, claims.subject, claims.generation) == (
        purpose,
        MEDIA,
        "alice",
        2,
    )
    assert claims.expires_at == expires == T0 + timedelta(seconds=120)
    if purpose is Purpose.UPLOAD:
        assert (claims.upload_id, claims.max_bytes, claims.content_type) == (
            upload_id,
            1000,
            "video/mp4",
        )
    elif purpose is Purpose.UPLOAD_PART:
        # A part token names its upload, part and exact size; the type is the upload's.
        assert (claims.upload_id, claims.max_bytes, claims.part_number) == (upload_id, 1000, 3)
        assert claims.content_type is None
    else:
        assert claims.upload_id is claims.max_bytes is claims.content_type is None
        assert claims.part_number is None


def test_payload_is_compact_and_carries_no_file_name(signer: UrlSigner) -> None:
    payload = payload_of(sign(signer))
    assert set(payload) == {"v", "k", "p", "m", "s", "g", "e"}
    assert payload["k"] == key_id(NEW) and len(str(payload["k"])) == 8
    assert payload["e"] == int(T0.timestamp()) + 300


@pytest.mark.parametrize(
    ("signed", "accepted"),
    [
        (Purpose.STREAM, (Purpose.UPLOAD,)),
        (Purpose.UPLOAD, READS),
        (Purpose.UPLOAD, (Purpose.UPLOAD_PART,)),
        (Purpose.THUMBNAIL, (Purpose.STREAM, Purpose.DOWNLOAD)),
        (Purpose.DOWNLOAD, (Purpose.STREAM,)),
    ],
)
def test_wrong_purpose_is_refused(
    signer: UrlSigner, signed: Purpose, accepted: tuple[Purpose, ...]
) -> None:
    assert reason(signer, sign(signer, signed), accepted) == "wrong_purpose"


@pytest.mark.parametrize("forged", ["d", "t", "u"])
def test_swapped_prefix_fails_the_signature(signer: UrlSigner, forged: str) -> None:
    token = sign(signer, Purpose.STREAM)
    assert reason(signer, forged + token[1:], tuple(Purpose)) == "bad_signature"


def _flip(text: str, index: int) -> str:
    char = "A" if text[index] != "A" else "B"
    return text[:index] + char + text[index + 1 :]


@pytest.mark.parametrize("part", [0, 1, 2])
def test_tampered_segments_fail(signer: UrlSigner, part: int) -> None:
    token = sign(signer)
    prefix, body = token.split(".", 1)
    segments = body.split(".")
    segments[part] = _flip(segments[part], 3)
    assert reason(signer, prefix + "." + ".".join(segments)) == "bad_signature"


def test_forged_payload_with_old_signature_fails(signer: UrlSigner) -> None:
    token = sign(signer)
    prefix, body = token.split(".", 1)
    _, stamp, sig = body.split(".")
    payload = payload_of(token) | {"m": OTHER}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert reason(signer, f"{prefix}.{forged}.{stamp}.{sig}") == "bad_signature"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", "malformed"),
        ("s", "malformed"),
        ("s.", "malformed"),
        ("x.abc.def.ghi", "malformed"),
        ("s.abc", "non_canonical"),
        ("s.a.b.c.d", "non_canonical"),
        ("s.é.b.c", "non_canonical"),
    ],
)
def test_garbage_is_refused(signer: UrlSigner, token: str, expected: str) -> None:
    assert reason(signer, token) == expected


def test_over_long_token_is_refused_before_parsing(signer: UrlSigner) -> None:
    token = sign(signer)
    assert reason(signer, token + "A" * (MAX_URL_TOKEN_LENGTH + 1 - len(token))) == "too_long"
    assert reason(signer, "s." + "x" * 5000) == "too_long"


def test_alternative_spellings_are_refused(signer: UrlSigner) -> None:
    """base64 tolerates padding and spare bits; only the canonical spelling verifies."""
    token = sign(signer)
    assert signer.verify(token, READS).media_id == MEDIA
    prefix, body = token.split(".", 1)
    payload, stamp, sig = body.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # An HMAC-SHA1 signature is 20 bytes: 27 base64 characters carry 2 spare low bits.
    last = alphabet.index(sig[-1])
    twins = [sig[:-1] + alphabet[last ^ bits] for bits in (1, 2, 3)]
    spellings = [f"{prefix}.{payload}.{stamp}.{sig}=", f"{prefix}.{payload}.{stamp}.{sig}=="]
    spellings += [f"{prefix}.{payload}.{stamp}.{twin}" for twin in twins]
    for spelling in spellings:
        assert reason(signer, spelling) == "non_canonical"


def test_expiry_uses_the_injected_clock_with_leeway(signer: UrlSigner, clock: ManualClock) -> None:
    token = sign(signer, ttl_s=60)
    clock.advance(60 + 30)
    assert signer.verify(token, READS).media_id == MEDIA  # inside the 30 s leeway
    clock.advance(1)
    assert reason(signer, token) == "expired"


def test_zero_leeway(clock: ManualClock) -> None:
    strict = UrlSigner([NEW], clock=clock, leeway_s=0)
    token = sign(strict, ttl_s=10)
    clock.advance(10)
    assert strict.verify(token, READS).media_id == MEDIA
    clock.advance(1)
    assert reason(strict, token) == "expired"


def test_token_from_a_slightly_fast_replica_verifies(clock: ManualClock) -> None:
    fast_clock = ManualClock(T0)
    fast_clock.advance(20)
    token = sign(UrlSigner([NEW], clock=fast_clock))
    assert UrlSigner([NEW], clock=clock).verify(token, READS).media_id == MEDIA
    fast_clock.advance(40)  # now 60 s ahead: beyond the leeway, "from the future"
    token = sign(UrlSigner([NEW], clock=fast_clock))
    assert reason(UrlSigner([NEW], clock=clock), token) == "max_age"


@pytest.mark.parametrize(
    ("purpose", "asked", "granted"),
    [
        (Purpose.STREAM, 10**9, URL_TTL_CAP_S),
        (Purpose.DOWNLOAD, URL_TTL_CAP_S + 1, URL_TTL_CAP_S),
        (Purpose.THUMBNAIL, 300, 300),
        (Purpose.UPLOAD, 10**6, UPLOAD_TTL_CAP_S),
        (Purpose.STREAM, 0, 1),
        (Purpose.STREAM, -50, 1),
    ],
)
def test_ttl_is_clamped(
    signer: UrlSigner, clock: ManualClock, purpose: Purpose, asked: int, granted: int
) -> None:
    upload = {"upload_id": uuid4(), "max_bytes": 1, "content_type": "image/png"}
    token, expires = signer.sign(
        purpose,
        media_id=MEDIA,
        subject="",
        generation=0,
        ttl_s=asked,
        **(upload if purpose is Purpose.UPLOAD else {}),
    )
    assert expires == T0 + timedelta(seconds=granted)
    clock.advance(granted + 30)
    assert signer.verify(token, [purpose]).expires_at == expires
    clock.advance(1)
    # At the cap the itsdangerous ceiling trips in the same second as the exp check, and first.
    cap = UPLOAD_TTL_CAP_S if purpose is Purpose.UPLOAD else URL_TTL_CAP_S
    assert reason(signer, token, (purpose,)) == ("max_age" if granted == cap else "expired")


def test_max_age_is_a_hard_ceiling_even_for_a_forged_exp(clock: ManualClock) -> None:
    """A payload with a far exp (as a leaked key could sign) still dies at cap + leeway."""
    serializer = URLSafeTimedSerializer(
        [NEW],
        salt=SALTS[Purpose.STREAM],
        signer=_ClockedSigner,
        signer_kwargs={"clock": clock},
    )
    far = int(T0.timestamp()) + 10 * URL_TTL_CAP_S
    body = serializer.dumps(
        {"v": 2, "k": key_id(NEW), "p": "stream", "m": MEDIA, "s": "", "g": 0, "e": far}
    )
    signer = UrlSigner([NEW], clock=clock)
    assert signer.verify("s." + body, READS).media_id == MEDIA
    clock.advance(URL_TTL_CAP_S + 30 + 1)
    assert reason(signer, "s." + body) == "max_age"


def test_rotation_old_key_still_verifies_and_new_key_signs(clock: ManualClock) -> None:
    before = UrlSigner([OLD], clock=clock)
    old_token = sign(before)
    rotated = UrlSigner([OLD, NEW], clock=clock)
    assert rotated.verify(old_token, READS).media_id == MEDIA
    new_token = sign(rotated)
    assert payload_of(new_token)["k"] == key_id(NEW)
    assert reason(before, new_token) == "bad_signature"  # replicas not yet rotated refuse it


def test_removed_key_fails(clock: ManualClock) -> None:
    old_token = sign(UrlSigner([OLD, NEW][:1], clock=clock))
    assert reason(UrlSigner([NEW], clock=clock), old_token) == "bad_signature"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"v": 1}, "version"),  # version 1 named media by row number
        ({"k": "deadbeef"}, "unknown_key"),
        ({"p": "download"}, "purpose_mismatch"),
        ({"m": "7"}, "malformed"),
        ({"m": 7}, "malformed"),
        ({"m": MEDIA[:-1] + "B"}, "malformed"),
        ({"g": True}, "malformed"),
        ({"s": 5}, "malformed"),
        ({"e": None}, "malformed"),
    ],
)
def test_payload_checks_after_the_signature(
    clock: ManualClock, change: dict[str, object], expected: str
) -> None:
    serializer = URLSafeTimedSerializer(
        [NEW],
        salt=SALTS[Purpose.STREAM],
        signer=_ClockedSigner,
        signer_kwargs={"clock": clock},
    )
    payload = {
        "v": 2,
        "k": key_id(NEW),
        "p": "stream",
        "m": MEDIA,
        "s": "",
        "g": 0,
        "e": int(T0.timestamp()) + 60,
    } | change
    token = "s." + serializer.dumps(payload)
    assert reason(UrlSigner([NEW], clock=clock), token) == expected


def test_upload_tokens_need_their_bindings(signer: UrlSigner) -> None:
    with pytest.raises(ValueError, match="upload"):
        signer.sign(Purpose.UPLOAD, media_id=MEDIA, subject="a", generation=0, ttl_s=60)


def test_a_key_list_is_required() -> None:
    with pytest.raises(ConfigError):
        UrlSigner([])
    with pytest.raises(ValueError, match="leeway"):
        UrlSigner([NEW], leeway_s=31)


def test_part_tokens_need_their_upload_part_and_size(signer: UrlSigner) -> None:
    with pytest.raises(ValueError):
        signer.sign(
            Purpose.UPLOAD_PART,
            media_id=MEDIA,
            subject="a",
            generation=0,
            ttl_s=60,
            upload_id=uuid4(),
            max_bytes=5,
        )
    token, _ = signer.sign(
        Purpose.UPLOAD_PART,
        media_id=MEDIA,
        subject="a",
        generation=0,
        ttl_s=60,
        upload_id=uuid4(),
        max_bytes=5,
        part_number=2,
    )
    assert set(payload_of(token)) == {"v", "k", "p", "m", "s", "g", "e", "u", "n", "i"}
    # A part token is no upload token, and the other way round.
    assert reason(signer, token, (Purpose.UPLOAD,)) == "wrong_purpose"


def test_payload_bytes_are_those_itsdangerous_makes() -> None:
    from itsdangerous import URLSafeTimedSerializer

    from media.signing import _UrlSerializer

    payload = {"v": 2, "s": "sübject ✓", "e": 1, "l": None, "n": [1, "é"]}
    ours = _UrlSerializer(["key"], salt="media.stream.v1").dump_payload(payload)
    theirs = URLSafeTimedSerializer(["key"], salt="media.stream.v1").dump_payload(payload)
    assert ours == theirs
