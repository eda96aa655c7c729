"""OIDC bearer tokens: issuer discovery, a per-kid JWKS cache and python-jose verification."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from jose import jwk, jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from media.errors import Unauthenticated, Unavailable
from media.models import Principal, Scope

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "ES256")
# The only key shape each allowed alg may use: (kty, crv). RFC 7518 §3.1.
_KEY_SHAPES = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}
KNOWN_SCOPES = frozenset(scope.value for scope in Scope)
DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_BEARER_LENGTH = 16 * 1024
MAX_DOCUMENT_BYTES = 256 * 1024
MIN_RSA_BITS = 2048
TOKEN_CACHE_SIZE = 10_000
# Keys the provider withdrew stop verifying within the JWKS response's cache lifetime
# (Cache-Control max-age), never later than this cap.
KEY_MAX_AGE_S = 600.0
_DECODE_ERRORS = (JOSEError, TypeError, ValueError, KeyError, OverflowError)
_FETCH_ERRORS = (Unavailable, httpx.HTTPError, TimeoutError, ValueError)
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


def cache_lifetime(cache_control: str | None) -> float:
    """How long a JWKS response may be used (RFC 9111 §5.2.2), at most KEY_MAX_AGE_S."""
    if not cache_control:
        return KEY_MAX_AGE_S
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return KEY_MAX_AGE_S if match is None else min(float(match.group(1)), KEY_MAX_AGE_S)


@dataclass(frozen=True, slots=True)
class _Key:
    """One usable verification key: its alg, the constructed jose key and its JWK source."""

    alg: str
    key: Any
    source: str


@dataclass(frozen=True, slots=True)
class _Verified:
    """A token that verified, remembered until it expires."""

    principal: Principal
    expires_at: float
    kid: str
    key: _Key


def _alg_for(entry: Mapping[str, Any]) -> str | None:
    """The allowed alg this JWK can verify, or None when it fits none (or contradicts itself)."""
    for alg, (kty, crv) in _KEY_SHAPES.items():
        if entry.get("kty") == kty and (crv is None or entry.get("crv") == crv):
            declared = entry.get("alg")
            return alg if declared in (None, alg) else None
    return None


def _rsa_bits(entry: Mapping[str, Any]) -> int:
    """The modulus size of an RSA JWK; 0 when it does not decode."""
    n = entry.get("n")
    if not isinstance(n, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _parse_jwk(entry: object, previous: Mapping[str, _Key]) -> tuple[str, _Key] | None:
    """One JWKS entry as (kid, key); None for keys we must never use (oct, private, weak, enc)."""
    if not isinstance(entry, dict) or "d" in entry or entry.get("use", "sig") != "sig":
        return None
    kid = entry.get("kid")
    alg = _alg_for(entry)
    if not isinstance(kid, str) or not kid or alg is None:
        return None
    if alg == "RS256" and _rsa_bits(entry) < MIN_RSA_BITS:
        return None
    source = json.dumps(entry, sort_keys=True)
    known = previous.get(kid)
    if known is not None and known.source == source:
        return kid, known  # docs/stack-notes.md §13: constructing a key costs 4x verifying with it
    try:
        key = jwk.construct(entry, alg)
    except _DECODE_ERRORS:
        return None
    return kid, _Key(alg=alg, key=key, source=source)


class _KeySet:
    """The issuer's signing keys by kid, refetched single-flight and at most once per interval."""

    def __init__(
        self,
        issuer: str,
        http: httpx.AsyncClient,
        clock: Callable[[], float],
        refresh_interval_s: float,
        timeout_s: float,
    ) -> None:
        self._issuer = issuer
        self._http = http
        self._clock = clock
        self._interval = refresh_interval_s
        self._timeout_s = timeout_s
        self._keys: dict[str, _Key] = {}
        self._jwks_uri: str | None = None
        self._attempted_at: float | None = None
        self._fetched_at: float | None = None
        self._lifetime = KEY_MAX_AGE_S
        self._failure: BaseException | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> _Key:
        """The key named kid; raise Unauthenticated when unknown, Unavailable when unknowable."""
        key = self._keys.get(kid)
        if key is not None and not self._stale():
            return key
        async with self._lock:
            # Waiters find the keys the first caller fetched; they never fetch again themselves.
            if kid not in self._keys or self._stale():
                await self._refresh_if_due()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._failure is not None:
            raise Unavailable(dependency="oidc", reason="jwks_unreachable") from self._failure
        raise Unauthenticated(reason="unknown_kid")

    def current(self, kid: str) -> _Key | None:
        """The key named kid while the set is fresh, without fetching; None otherwise."""
        return None if self._stale() else self._keys.get(kid)

    def _stale(self) -> bool:
        fetched_at = self._fetched_at
        return fetched_at is not None and self._clock() - fetched_at >= self._lifetime

    async def _refresh_if_due(self) -> None:
        now = self._clock()
        if self._attempted_at is not None and now - self._attempted_at < self._interval:
            return
        self._attempted_at = now
        try:
            keys, lifetime = await self._fetch()
        except _FETCH_ERRORS as exc:
            # Keep the keys we have: tokens signed by known keys still verify while it is down.
            self._failure = exc
            self._jwks_uri = None  # rediscover next time, in case the provider moved its JWKS
            log.warning("oidc key fetch failed for %s: %s", self._issuer, type(exc).__name__)
            return
        self._keys, self._fetched_at, self._failure = keys, now, None
        self._lifetime = lifetime

    async def _fetch(self) -> tuple[dict[str, _Key], float]:
        with anyio.fail_after(self._timeout_s):
            jwks_uri = self._jwks_uri or await self._discover()
            document, cache_control = await self._get_json(jwks_uri)
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise Unavailable(dependency="oidc", reason="jwks_without_keys")
        parsed = (_parse_jwk(entry, self._keys) for entry in entries)
        return dict(pair for pair in parsed if pair is not None), cache_lifetime(cache_control)

    async def _discover(self) -> str:
        document, _ = await self._get_json(self._issuer + DISCOVERY_PATH)
        # OIDC Discovery §4.3: the document's issuer MUST be identical to the one asked for.
        if document.get("issuer") != self._issuer:
            raise Unavailable(dependency="oidc", reason="issuer_mismatch")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
            raise Unavailable(dependency="oidc", reason="bad_jwks_uri")
        self._jwks_uri = jwks_uri
        return jwks_uri

    async def _get_json(self, url: str) -> tuple[dict[str, Any], str | None]:
        """The JSON object at `url` and the response's Cache-Control."""
        headers = {"Accept": "application/json"}
        async with self._http.stream("GET", url, headers=headers) as response:
            cache_control = response.headers.get("cache-control")
            if response.status_code != httpx.codes.OK:
                status = response.status_code
                raise Unavailable(dependency="oidc", reason="http_status", status=status)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise Unavailable(dependency="oidc", reason="document_too_large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise Unavailable(dependency="oidc", reason="not_a_json_object")
        return document, cache_control


def _number(claims: Mapping[str, Any], name: str) -> float:
    """A NumericDate claim (RFC 7519 §2) as a float; anything else is an invalid token."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unauthenticated(reason="invalid_claim", claim=name)
    return float(value)


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The known scopes of `scope` (space separated) and `scp` (list or string)."""
    found: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.extend(value.split())
        elif isinstance(value, list):
            found.extend(item for item in value if isinstance(item, str))
    return frozenset(found) & KNOWN_SCOPES


def _header(token: str) -> tuple[str, str]:
    """The (alg, kid) of a token, checked against the allow-list before any key is touched."""
    try:
        header = jwt.get_unverified_header(token)
    except _DECODE_ERRORS as exc:
        raise Unauthenticated(reason="malformed") from exc
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALLOWED_ALGORITHMS:
        raise Unauthenticated(reason="alg_not_allowed")
    if not isinstance(kid, str) or not kid:
        raise Unauthenticated(reason="missing_kid")
    if "crit" in header:
        # RFC 7515 §4.1.11: extensions we do not understand make the token invalid.
        raise Unauthenticated(reason="unsupported_crit")
    return str(alg), kid


class TokenVerifier:
    """Verifies bearer JWTs of one OIDC issuer for one audience."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        leeway_s: int = 30,
        refresh_interval_s: float = 60.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._leeway = leeway_s
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._keys = _KeySet(issuer, self._http, clock, refresh_interval_s, timeout_s)
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        # docs/stack-notes.md §13: without require_* jose accepts tokens lacking the claim.
        # Requiring exp forces jose's own exp check on the wall clock; exp, nbf and iat are
        # checked again on self._clock.
        self._options: dict[str, Any] = {
            "require_aud": True,
            "require_exp": True,
            "require_iat": True,
            "require_sub": True,
            "require_iss": True,
            "verify_nbf": False,
            "verify_at_hash": False,  # binds an ID token to an access token we never see
            "leeway": leeway_s,
        }

    async def verify(self, token: str) -> Principal:
        """The caller a token names; raise Unauthenticated(reason=...) or Unavailable(oidc)."""
        if len(token) > MAX_BEARER_LENGTH:
            raise Unauthenticated(reason="too_long")
        now = self._clock()
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()  # injective
        cached = self._verified.get(digest)
        if cached is not None:
            # A remembered token counts only while its key is still in a fresh key set.
            if now < cached.expires_at and self._keys.current(cached.kid) is cached.key:
                self._verified.move_to_end(digest)
                return cached.principal
            del self._verified[digest]
        alg, kid = _header(token)
        key = await self._keys.get(kid)
        if key.alg != alg:
            raise Unauthenticated(reason="alg_key_mismatch")
        claims = self._decode(token, key)
        expires_at = self._check_times(claims, now)
        principal = self._principal(claims)
        self._remember(digest, _Verified(principal, expires_at, kid, key))
        return principal

    async def close(self) -> None:
        """Close the HTTP client when this verifier created it."""
        if self._owns_http:
            await self._http.aclose()

    def _decode(self, token: str, key: _Key) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                audience=self._audience,
                issuer=self._issuer,
                options=self._options,
            )
        except ExpiredSignatureError as exc:
            raise Unauthenticated(reason="expired") from exc
        except JWTClaimsError as exc:
            # jose names the claim only in its message ("Invalid issuer", "Invalid audience").
            text = str(exc).lower()
            reason = "invalid_claims"
            if "issuer" in text:
                reason = "wrong_issuer"
            elif "audience" in text:
                reason = "wrong_audience"
            raise Unauthenticated(reason=reason) from exc
        except _DECODE_ERRORS as exc:
            raise Unauthenticated(reason="invalid_token") from exc
        return claims

    def _check_times(self, claims: Mapping[str, Any], now: float) -> float:
        """Check exp, nbf and iat on the injected clock; return exp."""
        expires_at = _number(claims, "exp")
        if now > expires_at + self._leeway:
            raise Unauthenticated(reason="expired")
        if "nbf" in claims and now + self._leeway < _number(claims, "nbf"):
            raise Unauthenticated(reason="not_yet_valid")
        if now + self._leeway < _number(claims, "iat"):
            raise Unauthenticated(reason="issued_in_future")
        return expires_at

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        # An empty subject would read as the anonymous principal.
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthenticated(reason="invalid_claim", claim="sub")
        return Principal(
            subject=subject,
            issuer=self._issuer,
            scopes=_scopes(claims),
            valid_until=_number(claims, "exp") + self._leeway,
        )

    def _remember(self, digest: bytes, verified: _Verified) -> None:
        self._verified[digest] = verified
        if len(self._verified) > TOKEN_CACHE_SIZE:
            self._verified.popitem(last=False)
