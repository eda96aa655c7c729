"""Bearer authentication: OIDC token verification (oidc.py) and the development issuer."""

from __future__ import annotations

from typing import Protocol

from media.models import Principal


class Verifier(Protocol):
    """The port the service uses: a bearer token in, a verified Principal out."""

    async def verify(self, token: str) -> Principal:
        """Return the caller of a valid token; raise Unauthenticated or Unavailable."""
        ...

    async def close(self) -> None:
        """Release the connections the verifier owns."""
        ...


__all__ = ["Verifier"]
