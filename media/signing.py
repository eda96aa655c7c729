"""Signed URL tokens: itsdangerous, one salt per purpose, key rotation, an injected clock."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, want_bytes

from media.clock import utc_now
from media.config import UPLOAD_TTL_CAP_S, URL_TTL_CAP_S
from media.errors import ConfigError, InvalidSignature
from media.ids import is_media_id
from media.models import Purpose, UrlClaims

TOKEN_VERSION = 2  # 2: the media is named by its public id (a string), no longer a row number
MAX_URL_TOKEN_LENGTH = 1024  # docs/security.md §1.10: refuse before parsing anything
DEFAULT_LEEWAY_S = 30  # docs/security.md §1.12: replicas are NTP-synced, so a small leeway suffices

SALTS: Mapping[Purpose, str] = {
    Purpose.STREAM: "media.stream.v1",
    Purpose.DOWNLOAD: "media.download.v1",
    Purpose.THUMBNAIL: "media.thumbnail.v1",
    Purpose.UPLOAD: "media.upload.v1",
    Purpose.UPLOAD_PART: "media.upload-part.v1",
    Purpose.HLS: "media.hls.v1",
}
# The prefix sits outside the signature and only picks the salt: a forged prefix picks a salt
# the signature was not made with, so it fails like any other tampering.
PREFIXES: Mapping[Purpose, str] = {
    Purpose.STREAM: "s",
    Purpose.DOWNLOAD: "d",
    Purpose.THUMBNAIL: "t",
    Purpose.UPLOAD: "u",
    Purpose.UPLOAD_PART: "p",
    Purpose.HLS: "h",
}
_BY_PREFIX = {prefix: purpose for purpose, prefix in PREFIXES.items()}
TTL_CAPS_S: Mapping[Purpose, int] = {
    Purpose.STREAM: URL_TTL_CAP_S,
    Purpose.DOWNLOAD: URL_TTL_CAP_S,
    Purpose.THUMBNAIL: URL_TTL_CAP_S,
    Purpose.UPLOAD: UPLOAD_TTL_CAP_S,
    Purpose.UPLOAD_PART: UPLOAD_TTL_CAP_S,
    Purpose.HLS: URL_TTL_CAP_S,
}


def key_id(key: str) -> str:
    """Short public id of a signing key: first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


class _ClockedSigner(TimestampSigner):
    """A TimestampSigner whose notion of now comes from an injected clock, shifted by `skew_s`."""

    def __init__(
        self, *args: Any, clock: Callable[[], datetime], skew_s: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock
        self._skew_s = skew_s
        self._mac: hmac.HMAC | None = None

    def get_timestamp(self) -> int:
        """Seconds since the epoch by the injected clock."""
        return int(self._clock().timestamp()) + self._skew_s

    def get_signature(self, value: str | bytes) -> bytes:
        """itsdangerous' signature, from a keyed HMAC prepared once and copied per token.

        The signing key never changes for a signer, and a listing signs hundreds of tokens:
        deriving the key and keying the HMAC again for each was a third of a token's cost.
        Verification keeps itsdangerous' own path (every key, oldest included)."""
        mac = self._mac
        if mac is None:
            mac = self._mac = hmac.new(self.derive_key(), digestmod=self.digest_method)
        mac = mac.copy()
        mac.update(want_bytes(value))
        return base64_encode(mac.digest())


# itsdangerous' compact JSON (no spaces, non-ASCII kept as UTF-8), built once.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class _UrlSerializer(URLSafeTimedSerializer):
    """The itsdangerous URL-safe format, with one signer per serializer and no zlib attempt.

    Payloads are ~100 bytes of JSON, which zlib almost never shortens, and a listing signs
    hundreds of URLs: skipping the attempt and reusing the signer halves the cost of a token.
    `loads` still reads compressed payloads, so the format is unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signer = super().make_signer(self.salt)

    def make_signer(self, salt: str | bytes | None = None) -> TimestampSigner:
        """The one signer of this serializer's salt (stateless, so it is shared)."""
        if salt is None or salt == self.salt:
            return self._signer  # type: ignore[return-value]
        return super().make_signer(salt)  # type: ignore[return-value]

    def dump_payload(self, obj: Any) -> bytes:
        """Base64 of the compact JSON, never compressed (the bytes itsdangerous would make,
        from one encoder instead of a new one per token)."""
        return base64_encode(_COMPACT_JSON.encode(obj).encode())


class UrlSigner:
    """Signs and verifies URL tokens; keys oldest to newest, the newest signs, all verify."""

    def __init__(
        self,
        keys: Sequence[str],
        *,
        clock: Callable[[], datetime] = utc_now,
        leeway_s: int = DEFAULT_LEEWAY_S,
    ) -> None:
        if not keys or any(not key for key in keys):
            raise ConfigError("at least one non-empty key is needed", variable="MEDIA_SIGNING_KEYS")
        if not 0 <= leeway_s <= DEFAULT_LEEWAY_S:
            raise ValueError(f"leeway_s must be 0..{DEFAULT_LEEWAY_S}, got {leeway_s}")
        self._keys = list(keys)
        self._key_ids = frozenset(key_id(key) for key in self._keys)
        self._signing_key_id = key_id(self._keys[-1])
        self._clock = clock
        self._leeway_s = leeway_s
        self._signers = {p: self._serializer(salt, 0) for p, salt in SALTS.items()}
        # The verifying clock runs `leeway_s` ahead, so a token stamped by a replica whose clock is
        # up to `leeway_s` fast is not "from the future" (itsdangerous rejects negative ages).
        self._verifiers = {p: self._serializer(salt, leeway_s) for p, salt in SALTS.items()}

    def form_tokens(self) -> FormTokens:
        """Form tokens signed with the same keys and clock."""
        return FormTokens(self._keys, clock=self._clock)

    def _serializer(self, salt: str, skew_s: int) -> URLSafeTimedSerializer:
        return _UrlSerializer(
            self._keys,
            salt=salt,
            signer=_ClockedSigner,
            signer_kwargs={"clock": self._clock, "skew_s": skew_s},
        )

    def sign(
        self,
        purpose: Purpose,
        *,
        media_id: str,
        subject: str,
        generation: int,
        ttl_s: int,
        upload_id: UUID | None = None,
        max_bytes: int | None = None,
        content_type: str | None = None,
        link_id: str | None = None,
        part_number: int | None = None,
    ) -> tuple[str, datetime]:
        """Return a token for `purpose` and its absolute expiry; ttl is clamped to 1 s..cap."""
        ttl = max(1, min(int(ttl_s), TTL_CAPS_S[purpose]))
        expires = int(self._clock().timestamp()) + ttl
        payload: dict[str, object] = {
            "v": TOKEN_VERSION,
            "k": self._signing_key_id,
            "p": purpose.value,
            "m": media_id,
            "s": subject,
            "g": generation,
            "e": expires,
        }
        if purpose is Purpose.UPLOAD:
            if upload_id is None or max_bytes is None or content_type is None:
                raise ValueError("upload tokens need upload_id, max_bytes and content_type")
            payload.update(u=str(upload_id), n=max_bytes, t=content_type)
        if link_id is not None:
            payload["l"] = link_id  # the link's public id, never its token
        if purpose is Purpose.UPLOAD_PART:
            if upload_id is None or max_bytes is None or part_number is None:
                raise ValueError("part tokens need upload_id, max_bytes and part_number")
            payload.update(u=str(upload_id), n=max_bytes, i=part_number)
        body = self._signers[purpose].dumps(payload)
        return f"{PREFIXES[purpose]}.{body}", datetime.fromtimestamp(expires, UTC)

    def verify(self, token: str, purposes: Collection[Purpose]) -> UrlClaims:
        """Return the claims of a valid token for one of `purposes`; raise InvalidSignature."""
        if len(token) > MAX_URL_TOKEN_LENGTH:
            raise InvalidSignature(reason="too_long")
        prefix, _, body = token.partition(".")
        purpose = _BY_PREFIX.get(prefix)
        if purpose is None or not body:
            raise InvalidSignature(reason="malformed")
        if not _is_canonical(body):
            raise InvalidSignature(reason="non_canonical")
        # Max age: the cap is the longest any honest token of this purpose can live.
        max_age = TTL_CAPS_S[purpose] + 2 * self._leeway_s
        try:
            payload = self._verifiers[purpose].loads(body, max_age=max_age)
        except SignatureExpired as exc:
            raise InvalidSignature(reason="max_age") from exc
        except BadData as exc:
            raise InvalidSignature(reason="bad_signature") from exc
        claims = self._check_payload(payload, purpose)
        if purpose not in purposes:
            raise InvalidSignature(reason="wrong_purpose", purpose=purpose.value)
        return claims

    def _check_payload(self, payload: object, purpose: Purpose) -> UrlClaims:
        if not isinstance(payload, dict):
            raise InvalidSignature(reason="malformed")
        if payload.get("v") != TOKEN_VERSION:
            raise InvalidSignature(reason="version")
        if payload.get("k") not in self._key_ids:
            raise InvalidSignature(reason="unknown_key")
        if payload.get("p") != purpose.value:
            raise InvalidSignature(reason="purpose_mismatch")
        claims = _claims(payload, purpose)
        now = int(self._clock().timestamp())
        if now > int(claims.expires_at.timestamp()) + self._leeway_s:
            raise InvalidSignature(reason="expired", media_id=claims.media_id)
        return claims


class FormTokens:
    """Signed hidden-field values of HTML forms: they bind a subject (a link id) and a nonce
    that the same browser also holds in a cookie (double submit), and expire."""

    SALT = "media.form.v1"

    def __init__(self, keys: Sequence[str], *, clock: Callable[[], datetime] = utc_now) -> None:
        if not keys or any(not key for key in keys):
            raise ConfigError("at least one non-empty key is needed", variable="MEDIA_SIGNING_KEYS")
        self._serializer = _UrlSerializer(
            list(keys), salt=self.SALT, signer=_ClockedSigner, signer_kwargs={"clock": clock}
        )

    def issue(self, subject: str, nonce: str) -> str:
        """A form token for `subject` and `nonce`."""
        return str(self._serializer.dumps([subject, nonce]))

    def check(self, token: str, subject: str, nonce: str, max_age_s: int) -> bool:
        """True when `token` was issued for exactly this subject and nonce within `max_age_s`."""
        if len(token) > MAX_URL_TOKEN_LENGTH or not nonce:
            return False
        try:
            value = self._serializer.loads(token, max_age=max_age_s)
        except BadData:
            return False
        return bool(value == [subject, nonce])


def _claims(payload: dict[str, Any], purpose: Purpose) -> UrlClaims:
    """Typed claims from a signed payload; wrong shapes are malformed tokens."""
    try:
        media_id, subject = payload["m"], payload["s"]
        generation, expires = _int(payload["g"]), _int(payload["e"])
        if not isinstance(subject, str) or not is_media_id(media_id):
            raise TypeError("subject or media id")
        upload_id = max_bytes = content_type = part_number = None
        if purpose is Purpose.UPLOAD:
            upload_id, max_bytes, content_type = (
                UUID(payload["u"]),
                _int(payload["n"]),
                payload["t"],
            )
            if not isinstance(content_type, str):
                raise TypeError("content type")
        link_id = payload.get("l")
        if link_id is not None and not isinstance(link_id, str):
            raise TypeError("link id")
        if purpose is Purpose.UPLOAD_PART:
            upload_id, max_bytes, part_number = (
                UUID(payload["u"]),
                _int(payload["n"]),
                _int(payload["i"]),
            )
        return UrlClaims(
            purpose=purpose,
            media_id=media_id,
            subject=subject,
            generation=generation,
            expires_at=datetime.fromtimestamp(expires, UTC),
            upload_id=upload_id,
            max_bytes=max_bytes,
            content_type=content_type,
            link_id=link_id,
            part_number=part_number,
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        raise InvalidSignature(reason="malformed") from exc


def _int(value: object) -> int:
    # JSON booleans are ints in Python; a signed payload never carries them here.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value


def _is_canonical(body: str) -> bool:
    """True when every base64 segment is spelled the one way itsdangerous writes it.

    base64 decoding tolerates padding and spare low bits, so one signature has several
    spellings (docs/security.md §1.14); refusing all but the canonical one gives a token one
    identity.
    """
    segments = body.removeprefix(".").split(".")
    if len(segments) != 3:
        return False
    for segment in segments:
        try:
            if base64_encode(base64_decode(segment)).decode("ascii") != segment:
                return False
        except BadData:
            return False
    return True
