"""A real OIDC provider on loopback: discovery and JWKS over HTTP, rotation, outages, minting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jwt

from media.auth.oidc import TokenVerifier
from tests.support import free_port

AUDIENCE = "media-service"
OMIT: Any = object()  # a claim value that removes the claim from the token
HANG_LIMIT_S = 10.0


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One provider key: the jose key parsed once (stack-notes.md §13), its public JWK and PEM."""

    kid: str
    alg: str
    signer: Any
    public_jwk: dict[str, Any]
    public_pem: bytes

    @classmethod
    def generate(cls, kid: str, alg: str = "RS256", *, rsa_bits: int = 2048) -> SigningKey:
        """A fresh RSA (RS256, 2048 bits unless told) or P-256 (ES256) key."""
        if alg == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        else:
            private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signer = jwk.construct(pem.decode(), alg)
        public = jwk.construct(public_pem.decode(), alg).to_dict()
        return cls(kid, alg, signer, {**public, "kid": kid, "use": "sig"}, public_pem)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        status, document = self.server.provider.answer(self.path)
        body = json.dumps(document).encode()
        self.send_response(status)
        cache_control = self.server.provider.jwks_cache_control
        if cache_control is not None and self.path.endswith("/jwks"):
            self.send_header("Cache-Control", cache_control)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for access logs."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: LocalOidcProvider

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that gave up (timeouts under test) are expected; nothing to report."""


class LocalOidcProvider:
    """Serves `<issuer>/.well-known/openid-configuration` and `<issuer>/jwks` on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/realms/test"
        self.audience = AUDIENCE
        self.keys: list[SigningKey] = [SigningKey.generate("key-1")]
        self.published: set[str] = {"key-1"}
        self.discovery_hits = 0
        self.jwks_hits = 0
        self.discovery_overrides: dict[str, Any] = {}
        self.extra_jwks: list[dict[str, Any]] = []
        self.jwks_cache_control: str | None = None
        self._release = threading.Event()
        self._release.set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- HTTP -------------------------------------------------------------------------------
    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one GET (runs in a server thread)."""
        self._release.wait(HANG_LIMIT_S)
        if path == "/realms/test/.well-known/openid-configuration":
            self.discovery_hits += 1
            return 200, {**self.discovery(), **self.discovery_overrides}
        if path == "/realms/test/jwks":
            self.jwks_hits += 1
            keys = [key.public_jwk for key in self.keys if key.kid in self.published]
            return 200, {"keys": [*keys, *self.extra_jwks]}
        return 404, {"error": "not_found"}

    def discovery(self) -> dict[str, Any]:
        """The provider metadata document."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + "/jwks",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    def start(self) -> None:
        """Listen on the provider's port (the same one after a stop)."""
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.provider = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: connections are refused until start()."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
        self._server = self._thread = None

    @contextmanager
    def down(self) -> Iterator[None]:
        """The provider refuses connections inside the block."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextmanager
    def hanging(self) -> Iterator[None]:
        """The provider accepts connections but answers nothing inside the block."""
        self._release.clear()
        try:
            yield
        finally:
            self._release.set()

    @contextmanager
    def serving_discovery(self, **overrides: Any) -> Iterator[None]:
        """Discovery documents carry these fields inside the block."""
        self.discovery_overrides = overrides
        try:
            yield
        finally:
            self.discovery_overrides = {}

    @contextmanager
    def serving_extra_jwks(self, *entries: dict[str, Any]) -> Iterator[None]:
        """The JWKS also lists these raw entries inside the block."""
        self.extra_jwks = list(entries)
        try:
            yield
        finally:
            self.extra_jwks = []

    # -- keys -------------------------------------------------------------------------------
    @property
    def key(self) -> SigningKey:
        """The newest published key, which mint() uses by default."""
        return next(key for key in reversed(self.keys) if key.kid in self.published)

    def rotate(self, *, alg: str = "RS256", publish: bool = True) -> SigningKey:
        """Add a new key (published in the JWKS unless told not to) and make it the newest."""
        key = SigningKey.generate(f"key-{len(self.keys) + 1}", alg)
        self.keys.append(key)
        if publish:
            self.published.add(key.kid)
        return key

    def publish(self, key: SigningKey) -> None:
        """Add a key to the JWKS."""
        self.published.add(key.kid)

    def withdraw(self, key: SigningKey) -> None:
        """Remove a key from the JWKS (the provider revoked it)."""
        self.published.discard(key.kid)

    def key_for(self, alg: str) -> SigningKey:
        """The newest published key of an algorithm, created when there is none."""
        for key in reversed(self.keys):
            if key.alg == alg and key.kid in self.published:
                return key
        return self.rotate(alg=alg)

    # -- tokens -----------------------------------------------------------------------------
    def claims(self, subject: str, scopes: Sequence[str], **overrides: Any) -> dict[str, Any]:
        """Valid claims for subject; overrides replace claims, OMIT removes one."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "scope": " ".join(scopes),
            **overrides,
        }
        return {name: value for name, value in claims.items() if value is not OMIT}

    def mint(
        self,
        subject: str = "alice",
        scopes: Sequence[str] = ("user",),
        *,
        key: SigningKey | None = None,
        headers: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A token signed by key (default the newest) with arbitrary claim and header overrides."""
        key = key or self.key
        token: str = jwt.encode(
            self.claims(subject, scopes, **overrides),
            key.signer,
            algorithm=key.alg,
            headers={"kid": key.kid, **(headers or {})},
        )
        return token

    def mint_alg_none(self, subject: str = "alice", scopes: Sequence[str] = ("user",)) -> str:
        """An unsigned token (`alg: none`) naming a real kid."""
        header = {"alg": "none", "typ": "JWT", "kid": self.key.kid}
        return f"{_segment(header)}.{_segment(self.claims(subject, scopes))}."

    def mint_hs256_with_public_key(
        self, subject: str = "alice", scopes: Sequence[str] = ("admin",)
    ) -> str:
        """The key-confusion attack: HMAC-SHA256 keyed with the published RSA public key PEM."""
        key = self.key_for("RS256")
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        signing_input = f"{_segment(header)}.{_segment(self.claims(subject, scopes))}"
        mac = hmac.new(key.public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"


def tamper(token: str, **claims: Any) -> str:
    """The token with its payload replaced by changed claims and the original signature kept."""
    header, payload, signature = token.split(".")
    original = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_segment({**original, **claims})}.{signature}"


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[LocalOidcProvider]:
    """A running local OIDC provider shared by the session (tests read hit counters as deltas)."""
    provider = LocalOidcProvider()
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
async def oidc_verifier(oidc_provider: LocalOidcProvider) -> AsyncIterator[TokenVerifier]:
    """A TokenVerifier for the local provider and its audience, closed after the test."""
    verifier = TokenVerifier(oidc_provider.issuer, oidc_provider.audience, timeout_s=2.0)
    try:
        yield verifier
    finally:
        await verifier.close()
