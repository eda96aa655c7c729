"""GET /metrics: bearer token, switched off, and one sum over several server processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tests.support import free_port
from tests.support.app import embedded_service_at
from tests.support.processes import clean_env, serve_process
from tests.support.scrape import sample_in

HEALTH = {"route": "/healthz", "method": "GET", "status": "200"}


def _healthz_count(text: str) -> float:
    return sample_in(text, "media_http_requests_total", **HEALTH)


def test_metrics_ask_for_the_bearer_token(tmp_path: Path) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_METRICS_TOKEN="scrape-me-0123") as service:
        assert httpx.get(f"{service.url}/healthz").status_code == 200
        refused = httpx.get(f"{service.url}/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "media_" not in refused.text
        auth = {"Authorization": "Bearer scrape-me-0123"}
        scraped = httpx.get(f"{service.url}/metrics", headers=auth)
        assert scraped.status_code == 200
        assert scraped.headers["content-type"] == CONTENT_TYPE_LATEST  # one charset
        assert scraped.headers["cache-control"] == "no-store"
        assert _healthz_count(scraped.text) >= 1
        # Asked of the job queue at scrape time (in-process on the embedded default).
        assert sample_in(scraped.text, "media_jobs_queued", queue="media") == 0.0


def test_metrics_can_be_switched_off(tmp_path: Path) -> None:
    with embedded_service_at(tmp_path / "data", MEDIA_METRICS="false") as service:
        assert httpx.get(f"{service.url}/metrics").status_code == 404
        assert httpx.get(f"{service.url}/healthz").status_code == 200


def test_one_scrape_sums_every_process(tmp_path: Path) -> None:
    # A server and a second process (as a worker would) write into one folder; a scrape of the
    # server merges both.
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    env = clean_env(
        MEDIA_DATA_DIR=str(tmp_path / "data"),
        MEDIA_PUBLIC_URL=f"http://127.0.0.1:{port}",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    other = (
        "from media.telemetry.metrics import HTTP_REQUESTS; "
        "HTTP_REQUESTS.labels('/healthz', 'GET', '200').inc(5)"
    )
    with serve_process(env, port, tmp_path / "out") as served:
        for _ in range(3):
            assert httpx.get(f"{served.url}/healthz").status_code == 200
        before = _healthz_count(httpx.get(f"{served.url}/metrics").text)
        subprocess.run([sys.executable, "-c", other], env=env, check=True, timeout=60)
        after = _healthz_count(httpx.get(f"{served.url}/metrics").text)
    assert (before, after) == (3.0, 8.0)
    writers = {path.name.split("_", 1)[1] for path in folder.glob("counter_*.db")}
    assert len(writers) == 2  # one file per process
