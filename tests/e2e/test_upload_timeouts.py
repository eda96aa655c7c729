"""A stalled upload body is cut with 408, the upload fails and nothing is stored."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.app import embedded_service_at
from tests.support.media_files import make_png
from tests.support.uploads import settled_state, stored_objects, subject, ticket_for


def test_idle_upload_is_cut_with_408_and_fails(tmp_path: Path) -> None:
    # One second of real waiting: the idle timer runs inside the server, out of reach of a clock.
    with embedded_service_at(tmp_path / "data", MEDIA_UPLOAD_IDLE_TIMEOUT_S="1") as service:
        token = service.token(subject())
        source = make_png(tmp_path / "slow.png")
        data = source.read_bytes()
        ticket = ticket_for(service, token, source, "image/png")
        url = urlsplit(ticket["uploadUrl"])
        lines = [f"PUT {url.path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in ticket["headers"].items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
            sock.sendall(head + data[: len(data) // 2])  # then nothing more
            answer = sock.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 408"), answer
        state = settled_state(service, token, ticket["mediaId"])
        assert state["status"] == "FAILED"
        assert state["failureReason"] == "upload idle timeout"
        assert stored_objects(service.settings) == set()
