"""The embedded development issuer: its key file, its tokens and its OIDC documents."""

from __future__ import annotations

import base64
import json
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from media.auth.dev_issuer import DevIssuer
from media.auth.oidc import TokenVerifier
from media.errors import ConfigError, InvalidInput, Unauthenticated
from server.dev_oidc import dev_oidc_handlers, dev_oidc_router, in_process_http

ISSUER = "http://127.0.0.1:8090/dev-oidc"
AUDIENCE = "media-service"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.load_or_create(tmp_path_factory.mktemp("data") / "oidc.key", ISSUER)


def decode_segment(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


async def verify_in_process(issuer: DevIssuer, token: str, **options: Any) -> Any:
    http = in_process_http(issuer)
    verifier = TokenVerifier(ISSUER, AUDIENCE, http=http, **options)
    try:
        return await verifier.verify(token)
    finally:
        await verifier.close()
        await http.aclose()


def test_key_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    key_path = tmp_path / "nested" / "oidc.key"
    first = DevIssuer.load_or_create(key_path, ISSUER)
    content = key_path.read_bytes()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert [p.name for p in key_path.parent.iterdir()] == ["oidc.key"]  # no temp file left

    second = DevIssuer.load_or_create(key_path, ISSUER + "/")
    assert key_path.read_bytes() == content
    assert second.kid == first.kid
    assert second.jwks() == first.jwks()
    assert second.issuer_url == ISSUER


def test_different_keys_have_different_kids(tmp_path: Path, issuer: DevIssuer) -> None:
    assert DevIssuer.load_or_create(tmp_path / "k", ISSUER).kid != issuer.kid


def test_unreadable_key_file_is_a_config_error(tmp_path: Path) -> None:
    key_path = tmp_path / "oidc.key"
    key_path.write_bytes(b"not a key")
    with pytest.raises(ConfigError) as caught:
        DevIssuer.load_or_create(key_path, ISSUER)
    assert caught.value.data["path"] == str(key_path)


def test_minted_token_carries_the_contract_claims(issuer: DevIssuer) -> None:
    token = issuer.mint("alice", ["user", "admin"], audience=AUDIENCE, ttl_s=600, now=1_000_000)
    header, claims = (decode_segment(part) for part in token.split(".")[:2])
    assert header == {"alg": "RS256", "typ": "JWT", "kid": issuer.kid}
    assert {name: claims[name] for name in ("iss", "aud", "sub", "iat", "nbf", "exp", "scope")} == {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": 1_000_000,
        "nbf": 1_000_000,
        "exp": 1_000_600,
        "scope": "user admin",
    }


@pytest.mark.parametrize(
    ("subject", "scopes", "ttl_s"),
    [("", ["user"], 60), ("alice", ["user admin"], 60), ("alice", [""], 60), ("alice", [], 0)],
    ids=["empty-subject", "scope-with-space", "empty-scope", "zero-ttl"],
)
def test_mint_refuses_bad_input(
    issuer: DevIssuer, subject: str, scopes: list[str], ttl_s: int
) -> None:
    with pytest.raises(InvalidInput):
        issuer.mint(subject, scopes, audience=AUDIENCE, ttl_s=ttl_s)


def test_documents_describe_the_issuer(issuer: DevIssuer) -> None:
    discovery = issuer.discovery()
    assert discovery["issuer"] == ISSUER
    assert discovery["jwks_uri"] == ISSUER + "/jwks"
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    (key,) = issuer.jwks()["keys"]
    assert key["kid"] == issuer.kid and key["kty"] == "RSA" and key["alg"] == "RS256"
    assert "d" not in key and "p" not in key


async def test_token_verifies_through_the_in_process_transport(issuer: DevIssuer) -> None:
    principal = await verify_in_process(issuer, issuer.mint("alice", ["admin"], audience=AUDIENCE))
    assert (principal.subject, principal.issuer, principal.scopes) == ("alice", ISSUER, {"admin"})


async def test_expired_dev_token_is_refused(issuer: DevIssuer) -> None:
    token = issuer.mint("alice", ["user"], audience=AUDIENCE, ttl_s=60, now=time.time() - 3600)
    with pytest.raises(Unauthenticated):
        await verify_in_process(issuer, token)


async def test_token_from_another_dev_key_is_refused(tmp_path: Path, issuer: DevIssuer) -> None:
    stranger = DevIssuer.load_or_create(tmp_path / "other.key", ISSUER)
    with pytest.raises(Unauthenticated):
        await verify_in_process(issuer, stranger.mint("mallory", ["admin"], audience=AUDIENCE))


async def test_in_process_transport_serves_only_the_two_documents(issuer: DevIssuer) -> None:
    async with in_process_http(issuer) as http:
        discovery = await http.get(ISSUER + "/.well-known/openid-configuration")
        jwks = await http.get(ISSUER + "/jwks?cache=no")
        other = await http.get(ISSUER + "/token")
        post = await http.post(ISSUER + "/jwks")
    assert discovery.json() == issuer.discovery()
    assert jwks.json() == issuer.jwks()
    assert (other.status_code, post.status_code) == (404, 405)


async def test_routes_serve_the_same_documents(issuer: DevIssuer) -> None:
    app = Litestar(route_handlers=[dev_oidc_router(issuer)])
    async with AsyncTestClient(app=app) as client:
        discovery = await client.get("/dev-oidc/.well-known/openid-configuration")
        jwks = await client.get("/dev-oidc/jwks")
    assert discovery.status_code == jwks.status_code == 200
    assert discovery.json() == issuer.discovery("http://testserver.local/dev-oidc/jwks")
    assert jwks.json() == issuer.jwks()
    assert "max-age" in jwks.headers["cache-control"]


async def test_verifier_works_against_the_routes_over_asgi(issuer: DevIssuer) -> None:
    app = Litestar(route_handlers=dev_oidc_handlers(issuer))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as http:
        verifier = TokenVerifier(ISSUER, AUDIENCE, http=http)
        principal = await verifier.verify(issuer.mint("bob", ["user"], audience=AUDIENCE))
        await verifier.close()
    assert principal.subject == "bob"
