"""Shared real-part fixtures: PostgreSQL, moto S3 server, OIDC provider, uvicorn, media files."""

from __future__ import annotations

import os
import socket

import pytest


def unavailable(reason: str) -> None:
    """Skip with a visible reason, except under CI=true where a missing dependency is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
