"""nginx serving one file on loopback, as the native baseline; skipped when nginx is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.procs import Proc, Processes, wait_http

# One worker, no master: its pid is the whole server, so its CPU time is nginx's CPU time.
_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ video/mp4 mp4; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """The nginx executable, or None."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None
    )


def start_nginx(procs: Processes, prefix: Path, file: Path, port: int) -> tuple[Proc, str]:
    """Serve `file` as /object.mp4; return the process and the file's URL."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx")
    root = prefix / "root"
    root.mkdir(parents=True)
    (root / "object.mp4").symlink_to(file)
    conf = prefix / "nginx.conf"
    conf.write_text(_CONFIG.format(prefix=prefix, port=port, root=root))
    proc = procs.start("nginx", [binary, "-p", str(prefix), "-c", str(conf)])
    url = f"http://127.0.0.1:{port}/object.mp4"
    wait_http(proc, url)
    return proc, url
