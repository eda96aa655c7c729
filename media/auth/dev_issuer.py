"""The embedded development issuer: one RSA key in the data dir, RS256 JWTs, OIDC documents."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from media.errors import ConfigError, InvalidInput

RSA_KEY_BITS = 2048
KEY_FILE_MODE = 0o600
SIGNING_ALGORITHM = "RS256"


def _b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    """An unsigned integer as the base64url of its big-endian bytes (RFC 7518 §2)."""
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _compact_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The public RSA JWK fields (RFC 7518 §6.3.1)."""
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


def _thumbprint(public_jwk: dict[str, str]) -> str:
    """The RFC 7638 JWK thumbprint, used as kid so the same key always has the same kid."""
    members = {name: public_jwk[name] for name in ("e", "kty", "n")}
    return _b64url(hashlib.sha256(_compact_json(members)).digest())


def _create_key_file(key_path: Path) -> None:
    """Write a new private key, mode 0600; a concurrent creator's whole file wins, never half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    temp = key_path.with_name(f".{key_path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        # link() refuses an existing target, so two first starts agree on one key.
        os.link(temp, key_path)
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)


def _load_key(key_path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            "unreadable dev issuer key", variable="MEDIA_DATA_DIR", path=str(key_path)
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < RSA_KEY_BITS:
        raise ConfigError(
            "dev issuer key is not RSA-2048+", variable="MEDIA_DATA_DIR", path=str(key_path)
        )
    return key


@dataclass(frozen=True, slots=True)
class DevIssuer:
    """Mints RS256 tokens for development and publishes its discovery document and JWKS."""

    issuer_url: str
    kid: str
    private_key: rsa.RSAPrivateKey
    public_jwk: dict[str, str]

    @classmethod
    def load_or_create(cls, key_path: Path, issuer_url: str) -> DevIssuer:
        """Load the key at key_path, creating it (RSA 2048, mode 0600) on first start. Blocking."""
        if not key_path.exists():
            _create_key_file(key_path)
        return cls.load(key_path, issuer_url)

    @classmethod
    def load(cls, key_path: Path, issuer_url: str) -> DevIssuer:
        """Load the existing key at key_path; ConfigError (naming the path) when there is none."""
        if not key_path.exists():
            raise ConfigError(
                "no development issuer key", variable="MEDIA_DATA_DIR", path=str(key_path)
            )
        key = _load_key(key_path)  # parsed once: every mint reuses the key object
        public_jwk = _public_jwk(key)
        return cls(
            issuer_url=issuer_url.rstrip("/"),
            kid=_thumbprint(public_jwk),
            private_key=key,
            public_jwk=public_jwk,
        )

    def mint(
        self,
        subject: str,
        scopes: Sequence[str],
        *,
        audience: str,
        ttl_s: int = 3600,
        now: float | None = None,
    ) -> str:
        """A signed RS256 JWT for subject with space-separated scopes, valid ttl_s from now."""
        if not subject.strip():
            raise InvalidInput("empty subject", field="subject")
        if ttl_s <= 0:
            raise InvalidInput("ttl must be positive", field="ttl_s")
        if any(not scope or any(char.isspace() for char in scope) for scope in scopes):
            raise InvalidInput("scopes are single words", field="scopes")
        issued_at = int(time.time() if now is None else now)
        claims = {
            "iss": self.issuer_url,
            "aud": audience,
            "sub": subject,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_s,
            "scope": " ".join(scopes),
            "jti": secrets.token_urlsafe(12),
        }
        header = {"alg": SIGNING_ALGORITHM, "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64url(_compact_json(header))}.{_b64url(_compact_json(claims))}"
        signature = self.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"

    @property
    def jwks_uri(self) -> str:
        """Where the JWKS is served."""
        return self.issuer_url + "/jwks"

    def discovery(self, jwks_uri: str | None = None) -> dict[str, Any]:
        """The OpenID Provider metadata (OIDC Discovery §3) of this issuer; `jwks_uri` where the
        server that serves it is reached (the issuer's identity names no host)."""
        return {
            "issuer": self.issuer_url,
            "jwks_uri": jwks_uri or self.jwks_uri,
            "id_token_signing_alg_values_supported": [SIGNING_ALGORITHM],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
            "scopes_supported": ["openid", "user", "admin", "anonymous"],
            "claims_supported": ["iss", "aud", "sub", "iat", "nbf", "exp", "scope", "jti"],
        }

    def jwks(self) -> dict[str, Any]:
        """The public key set (RFC 7517 §5)."""
        key = {**self.public_jwk, "use": "sig", "alg": SIGNING_ALGORITHM, "kid": self.kid}
        return {"keys": [key]}
