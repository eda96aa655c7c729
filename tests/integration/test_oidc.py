"""TokenVerifier against a real OIDC provider over loopback HTTP."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from media.auth.oidc import KEY_MAX_AGE_S, TokenVerifier
from media.errors import Unauthenticated, Unavailable
from media.models import Principal
from tests.support.clock import ManualClock
from tests.support.oidc import OMIT, LocalOidcProvider, SigningKey, tamper

INTERVAL_S = 60.0


@pytest.fixture
async def make_verifier(
    oidc_provider: LocalOidcProvider, clock: ManualClock
) -> AsyncIterator[Callable[..., TokenVerifier]]:
    made: list[TokenVerifier] = []

    def make(**kwargs: Any) -> TokenVerifier:
        options: dict[str, Any] = {
            "clock": clock.seconds,
            "refresh_interval_s": INTERVAL_S,
            "timeout_s": 2.0,
        }
        verifier = TokenVerifier(oidc_provider.issuer, oidc_provider.audience, **(options | kwargs))
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.close()


@pytest.fixture
def verifier(make_verifier: Callable[..., TokenVerifier]) -> TokenVerifier:
    return make_verifier()


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    return str(caught.value.data["reason"])


async def test_valid_token_gives_the_principal(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    principal = await verifier.verify(oidc_provider.mint("alice", ["user"]))
    assert principal == Principal("alice", oidc_provider.issuer, frozenset({"user"}))
    assert principal.is_user and not principal.is_admin


async def test_es256_tokens_verify(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    token = oidc_provider.mint("erin", ["admin"], key=oidc_provider.key_for("ES256"))
    assert (await verifier.verify(token)).is_admin


async def test_es256_header_on_an_rsa_kid_is_refused(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    es_key = oidc_provider.key_for("ES256")
    rsa_kid = oidc_provider.key_for("RS256").kid
    token = oidc_provider.mint(key=es_key, headers={"kid": rsa_kid})
    assert await refused(verifier, token) == "alg_key_mismatch"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iat": -7200, "nbf": -7200, "exp": -3600}, "expired"),
        ({"nbf": 3600, "exp": 7200}, "not_yet_valid"),
        ({"iat": 3600, "nbf": 0, "exp": 7200}, "issued_in_future"),
    ],
    ids=["expired", "not-yet-valid", "issued-in-future"],
)
async def test_time_claims_are_checked(
    oidc_provider: LocalOidcProvider,
    verifier: TokenVerifier,
    clock: ManualClock,
    claims: dict[str, Any],
    reason: str,
) -> None:
    token = oidc_provider.mint(
        **{name: int(clock.seconds()) + delta for name, delta in claims.items()}
    )
    assert await refused(verifier, token) == reason


async def test_leeway_accepts_small_skew(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    now = int(clock.seconds())
    token = oidc_provider.mint(iat=now + 20, nbf=now + 20, exp=now + 60)
    assert (await verifier.verify(token)).subject == "alice"


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "http://127.0.0.1:1/evil"},
        {"aud": "another-service"},
        {"aud": ["another-service", "third"]},
        {"sub": OMIT},
        {"sub": ""},
        {"exp": OMIT},
        {"aud": OMIT},
        {"iat": OMIT},
        {"iss": OMIT},
        {"exp": "tomorrow"},
        {"exp": float("inf")},
    ],
    ids=[
        "wrong-issuer",
        "wrong-audience",
        "wrong-audience-list",
        "missing-sub",
        "empty-sub",
        "missing-exp",
        "missing-aud",
        "missing-iat",
        "missing-iss",
        "text-exp",
        "infinite-exp",
    ],
)
async def test_bad_claims_are_refused(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, overrides: dict[str, Any]
) -> None:
    await refused(verifier, oidc_provider.mint(**overrides))


async def test_audience_list_containing_ours_is_accepted(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    token = oidc_provider.mint(aud=["other", oidc_provider.audience])
    assert (await verifier.verify(token)).subject == "alice"


async def test_alg_none_is_refused(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    assert await refused(verifier, oidc_provider.mint_alg_none()) == "alg_not_allowed"


async def test_hs256_signed_with_the_public_key_is_refused(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    assert await refused(verifier, oidc_provider.mint_hs256_with_public_key()) == "alg_not_allowed"


async def test_tampered_payload_is_refused(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    token = oidc_provider.mint("alice", ["user"])
    assert (await verifier.verify(token)).subject == "alice"
    assert await refused(verifier, tamper(token, sub="mallory", scope="admin")) == "invalid_token"


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jwt", "a.b.c", "x" * 20_000, "\ud800.e30.e30"],
    ids=["empty", "one-part", "garbage", "huge", "lone-surrogate"],
)
async def test_malformed_tokens_are_refused(verifier: TokenVerifier, token: str) -> None:
    await refused(verifier, token)


async def test_critical_header_extensions_are_refused(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    token = oidc_provider.mint(headers={"crit": ["exp-ext"], "exp-ext": 1})
    assert await refused(verifier, token) == "unsupported_crit"


@pytest.mark.parametrize(
    "changes",
    [{"alg": "PS256"}, {"alg": "ES256"}, {"use": "enc"}, {"kty": "oct", "k": "c2VjcmV0"}],
    ids=["declares-ps256", "declares-es256", "encryption-key", "symmetric"],
)
async def test_unusable_jwks_entries_are_ignored(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, changes: dict[str, str]
) -> None:
    key = oidc_provider.key_for("RS256")
    entry = {**key.public_jwk, "kid": "odd", **changes}
    with oidc_provider.serving_extra_jwks(entry):
        token = oidc_provider.mint(key=key, headers={"kid": "odd"})
        assert await refused(verifier, token) == "unknown_kid"
        assert (await verifier.verify(oidc_provider.mint(key=key))).is_user


@pytest.mark.parametrize("kind", ["weak-rsa-1024", "private-jwk"])
async def test_weak_or_private_jwks_entries_are_ignored(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, kind: str
) -> None:
    if kind == "weak-rsa-1024":
        key = SigningKey.generate("odd", rsa_bits=1024)
        entry = key.public_jwk
    else:
        key = SigningKey.generate("odd")
        entry = {**key.signer.to_dict(), "kid": "odd"}
    with oidc_provider.serving_extra_jwks(entry):
        assert await refused(verifier, oidc_provider.mint(key=key)) == "unknown_kid"


async def test_unknown_kid_then_rotation_refetches_once_due(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    await verifier.verify(oidc_provider.mint())
    hidden = oidc_provider.rotate(publish=False)
    token = oidc_provider.mint("bob", key=hidden)
    assert await refused(verifier, token) == "unknown_kid"  # not published yet

    oidc_provider.publish(hidden)
    assert await refused(verifier, token) == "unknown_kid"  # refetch not due yet
    clock.advance(INTERVAL_S)
    assert (await verifier.verify(token)).subject == "bob"


async def test_rotation_is_picked_up_on_first_sight_of_the_new_kid(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    await verifier.verify(oidc_provider.mint())
    clock.advance(INTERVAL_S)
    fresh = oidc_provider.rotate()
    assert (await verifier.verify(oidc_provider.mint("carol", key=fresh))).subject == "carol"


async def test_garbage_kids_refetch_at_most_once_per_interval(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    await verifier.verify(oidc_provider.mint())
    before = oidc_provider.jwks_hits

    def garbage() -> str:
        return oidc_provider.mint(headers={"kid": secrets.token_hex(8)})

    await refused(verifier, garbage())  # the first fetch was just now: not due yet
    assert oidc_provider.jwks_hits == before

    clock.advance(INTERVAL_S)
    tokens = [garbage() for _ in range(30)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(result, Unauthenticated) for result in results)
    assert oidc_provider.jwks_hits - before == 1

    clock.advance(INTERVAL_S / 2)
    await refused(verifier, garbage())
    assert oidc_provider.jwks_hits - before == 1

    clock.advance(INTERVAL_S / 2)
    await refused(verifier, garbage())
    await refused(verifier, garbage())
    assert oidc_provider.jwks_hits - before == 2


async def test_cached_keys_work_while_the_provider_is_down(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    await verifier.verify(oidc_provider.mint())
    clock.advance(INTERVAL_S)
    with oidc_provider.down():
        assert (await verifier.verify(oidc_provider.mint("dave"))).subject == "dave"
        with pytest.raises(Unavailable):
            await verifier.verify(oidc_provider.mint(headers={"kid": "never-seen"}))


async def test_stale_keys_keep_working_while_the_provider_is_down(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    await verifier.verify(oidc_provider.mint())
    clock.advance(KEY_MAX_AGE_S * 3)
    now = int(clock.seconds())
    token = oidc_provider.mint("dave", iat=now, nbf=now, exp=now + 60)
    with oidc_provider.down():
        assert (await verifier.verify(token)).subject == "dave"


async def test_withdrawn_keys_stop_verifying_once_the_set_is_stale(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    doomed = oidc_provider.rotate()
    exp = int(clock.seconds() + 2 * KEY_MAX_AGE_S)
    await verifier.verify(oidc_provider.mint(key=doomed, exp=exp))
    oidc_provider.withdraw(doomed)
    clock.advance(KEY_MAX_AGE_S - 1)
    assert (
        await verifier.verify(oidc_provider.mint("gina", key=doomed, exp=exp))
    ).subject == "gina"
    clock.advance(1)
    assert await refused(verifier, oidc_provider.mint("hank", key=doomed, exp=exp)) == "unknown_kid"
    assert (await verifier.verify(oidc_provider.mint("ivy", exp=exp))).is_user


async def test_provider_down_without_keys_is_unavailable_fast(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier
) -> None:
    token = oidc_provider.mint()
    started = time.monotonic()
    with oidc_provider.down(), pytest.raises(Unavailable) as caught:
        await verifier.verify(token)
    assert caught.value.dependency == "oidc"
    assert time.monotonic() - started < 2.0


async def test_hanging_provider_times_out_as_unavailable(
    oidc_provider: LocalOidcProvider, make_verifier: Callable[..., TokenVerifier]
) -> None:
    verifier = make_verifier(timeout_s=0.3)
    token = oidc_provider.mint()
    started = time.monotonic()
    with oidc_provider.hanging(), pytest.raises(Unavailable):
        await verifier.verify(token)
    assert time.monotonic() - started < 2.0


async def test_provider_recovery_is_picked_up_after_the_interval(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    token = oidc_provider.mint()
    with oidc_provider.down(), pytest.raises(Unavailable):
        await verifier.verify(token)
    clock.advance(INTERVAL_S)
    assert (await verifier.verify(token)).subject == "alice"


@pytest.mark.parametrize(
    "document",
    [{"issuer": "http://127.0.0.1:1/impostor"}, {"jwks_uri": None}, {"jwks_uri": "file:///etc/x"}],
    ids=["issuer-mismatch", "no-jwks-uri", "non-http-jwks-uri"],
)
async def test_bad_discovery_is_unavailable(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, document: dict[str, Any]
) -> None:
    token = oidc_provider.mint()
    with oidc_provider.serving_discovery(**document), pytest.raises(Unavailable):
        await verifier.verify(token)


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "user admin openid email"}, {"user", "admin"}),
        ({"scope": OMIT, "scp": ["admin", "profile"]}, {"admin"}),
        ({"scope": OMIT, "scp": "anonymous user"}, {"anonymous", "user"}),
        ({"scope": "openid", "scp": ["user"]}, {"user"}),
        ({"scope": OMIT}, set()),
        ({"scope": 7, "scp": {"user": True}}, set()),
    ],
    ids=["scope-string", "scp-list", "scp-string", "both", "none", "wrong-types"],
)
async def test_scopes_keep_the_known_ones(
    oidc_provider: LocalOidcProvider,
    verifier: TokenVerifier,
    claims: dict[str, Any],
    scopes: set[str],
) -> None:
    token = oidc_provider.mint("frank", **claims)
    assert (await verifier.verify(token)).scopes == frozenset(scopes)


async def test_verified_tokens_are_cached_until_exp(
    oidc_provider: LocalOidcProvider, verifier: TokenVerifier, clock: ManualClock
) -> None:
    token = oidc_provider.mint(exp=int(clock.seconds()) + 120)
    first = await verifier.verify(token)
    with oidc_provider.down():
        assert await verifier.verify(token) is first
    clock.advance(200)
    assert await refused(verifier, token) == "expired"


@pytest.mark.parametrize(
    ("cache_control", "lifetime_s"),
    [
        ("max-age=120", 120.0),
        ("public, max-age=86400", KEY_MAX_AGE_S),  # capped
        (None, KEY_MAX_AGE_S),
        ("no-store", INTERVAL_S),  # refetched as soon as the refresh interval allows
    ],
)
async def test_withdrawn_keys_follow_the_jwks_cache_lifetime(
    oidc_provider: LocalOidcProvider,
    verifier: TokenVerifier,
    clock: ManualClock,
    cache_control: str | None,
    lifetime_s: float,
) -> None:
    oidc_provider.jwks_cache_control = cache_control
    doomed = oidc_provider.rotate()
    exp = int(clock.seconds() + 2 * KEY_MAX_AGE_S)
    remembered = oidc_provider.mint("jo", key=doomed, exp=exp)
    await verifier.verify(remembered)
    oidc_provider.withdraw(doomed)
    clock.advance(lifetime_s - 1)
    assert (await verifier.verify(remembered)).subject == "jo"
    clock.advance(1)
    # The verified-token cache does not outlive the key that verified it.
    assert await refused(verifier, remembered) == "unknown_kid"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "https://elsewhere.example"}, "wrong_issuer"),
        ({"aud": "another-api"}, "wrong_audience"),
    ],
)
async def test_claim_refusals_name_the_claim(
    oidc_provider: LocalOidcProvider,
    verifier: TokenVerifier,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    assert await refused(verifier, oidc_provider.mint(**overrides)) == reason
