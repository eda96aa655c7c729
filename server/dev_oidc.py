"""The embedded issuer's OIDC documents: routes under /dev-oidc and an in-process client."""

from __future__ import annotations

import json
from typing import Any

import httpx
from litestar import Request, Response, Router, get
from litestar.datastructures import CacheControlHeader

from media.auth.dev_issuer import DevIssuer

DEV_OIDC_PATH = "/dev-oidc"
_CACHE = CacheControlHeader(public=True, max_age=300)


def dev_oidc_router(issuer: DevIssuer) -> Router:
    """Routes for `/dev-oidc/.well-known/openid-configuration` and `/dev-oidc/jwks`."""

    @get("/.well-known/openid-configuration", sync_to_thread=False, cache_control=_CACHE)
    def discovery(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """The embedded issuer's discovery document, its JWKS on the address asked."""
        base = str(request.base_url).rstrip("/")
        return Response(issuer.discovery(f"{base}{DEV_OIDC_PATH}/jwks"))

    @get("/jwks", sync_to_thread=False, cache_control=_CACHE)
    def jwks() -> Response[dict[str, Any]]:
        """The embedded issuer's public keys."""
        return Response(issuer.jwks())

    return Router(path=DEV_OIDC_PATH, route_handlers=[discovery, jwks])


def dev_oidc_handlers(issuer: DevIssuer) -> list[Router]:
    """The /dev-oidc routes as a handler list for `Litestar(route_handlers=...)`."""
    return [dev_oidc_router(issuer)]


class DevIssuerTransport(httpx.AsyncBaseTransport):
    """Answers GETs for the embedded issuer's two documents in process, without a socket."""

    def __init__(self, issuer: DevIssuer) -> None:
        self._documents = {
            httpx.URL(issuer.issuer_url + "/.well-known/openid-configuration"): issuer.discovery(),
            httpx.URL(issuer.jwks_uri): issuer.jwks(),
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The document the request names, 404 for any other URL, 405 for other methods."""
        document = self._documents.get(request.url.copy_with(query=None, fragment=None))
        if document is None:
            return httpx.Response(404, request=request)
        if request.method != "GET":
            return httpx.Response(405, headers={"Allow": "GET"}, request=request)
        body = json.dumps(document).encode()
        headers = {"Content-Type": "application/json"}
        return httpx.Response(200, headers=headers, content=body, request=request)


def in_process_http(issuer: DevIssuer) -> httpx.AsyncClient:
    """An HTTP client serving the embedded issuer's real documents, for its TokenVerifier.

    The server would otherwise have to call itself over the network during a request; this runs
    the same discovery and JWKS code path against the same documents the /dev-oidc routes serve.
    """
    return httpx.AsyncClient(transport=DevIssuerTransport(issuer))
