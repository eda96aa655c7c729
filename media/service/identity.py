"""Who is calling: the Authorization header turned into a Principal."""

from __future__ import annotations

from media.errors import Forbidden, Unauthenticated
from media.models import ANONYMOUS, Owner, Principal
from media.service.context import Parts


class Authenticator:
    """The Authorization header as a Principal (the scope checks every use case shares follow)."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    async def authenticate(self, authorization: str | None) -> Principal:
        """ANONYMOUS without a header; a verified Principal for a good bearer token."""
        if authorization is None:
            return ANONYMOUS
        if not authorization.strip():
            raise Unauthenticated("empty authorization header", reason="malformed")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        # The verifier bounds the token's length before it parses anything (media/auth/oidc.py).
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("malformed authorization header", reason="malformed")
        return await self._parts.verifier.verify(token)


def require_user(principal: Principal) -> None:
    """Refuse anonymous callers and tokens without the user or admin scope."""
    if principal.is_anonymous:
        raise Unauthenticated("a bearer token is required", reason="missing")
    if not principal.is_user:
        raise Forbidden("the user scope is required", scope="user")


def owner_filter(principal: Principal) -> Owner | None:
    """The owner to restrict queries to; None lets an admin see every owner."""
    return None if principal.is_admin else Owner.of(principal)
