"""The framework's floor: bench.floor's pread app as a bare Litestar `asgi` route.

Run as `python -m uvicorn bench.floor_litestar:app`. The route is a mount at `/media`, like the
service's stream route, with nothing else in the app: what it costs above bench.floor is what
Litestar itself costs per request (its router, its exception handler around the app).
"""

from __future__ import annotations

from litestar import Litestar, asgi
from litestar.types import Receive, Scope, Send

from bench import floor


@asgi("/media", is_mount=True, copy_scope=False)
async def media(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the floor's file, ranges included."""
    await floor.app(scope, receive, send)  # type: ignore[arg-type]


app = Litestar(route_handlers=[media], openapi_config=None, debug=False)
