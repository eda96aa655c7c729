"""Metrics, console traces and JSON logs on through a whole flow: no token reaches any of them."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from media.config import load_settings
from server.lifecycle import dev_issuer
from tests.support import free_port
from tests.support.app import RunningService
from tests.support.flow import upload_file
from tests.support.media_files import make_mp4
from tests.support.processes import Proc, clean_env, serve_process
from tests.support.sharing import create_link, shared

URLS = """query Urls($id: ID!) { media(id: $id) { id
  streamUrl { url } downloadUrl { url } thumbnailUrl { url } hlsUrl { url } } }"""
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


def _drive(service: RunningService, token: str, source: Path) -> tuple[dict[str, Any], set[str]]:
    """Upload, stream with every kind of range, GraphQL and bad credentials; returns the secrets."""
    media = upload_file(service, token, source, "video/mp4")
    urls = service.graphql(URLS, {"id": media["id"]}, token=token)["data"]["media"]
    stream, download, thumb = (urls[k]["url"] for k in ("streamUrl", "downloadUrl", "thumbnailUrl"))
    whole = httpx.get(stream, timeout=30)
    assert whole.status_code == 200
    traced = {"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01", "Range": "bytes=0-99"}
    assert httpx.get(stream, headers=traced, timeout=30).status_code == 206
    multi = httpx.get(stream, headers={"Range": "bytes=0-9,100-109"}, timeout=30)
    assert multi.status_code == 206 and multi.headers["content-type"].startswith("multipart/")
    etag = whole.headers["etag"]
    assert httpx.get(stream, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    # Requests the router refuses: observed too, under the route "other", never their path.
    assert httpx.get(f"{service.url}/no-such-path-1234", timeout=30).status_code == 404
    assert httpx.delete(f"{service.url}/healthz", timeout=30).status_code == 405
    assert httpx.get(stream, headers={"Range": "bytes=999999999-"}, timeout=30).status_code == 416
    assert httpx.head(stream, timeout=30).status_code == 200
    assert httpx.get(download, timeout=30).status_code == 200
    assert httpx.get(thumb, timeout=30).status_code == 200
    tampered = stream[:-3] + ("AAA" if not stream.endswith("AAA") else "BBB")
    assert httpx.get(tampered, timeout=30).status_code == 403
    bad_jwt = token[:-4] + "abcd"
    answer = httpx.post(
        f"{service.url}/graphql",
        json={"query": "{ me { subject } }"},
        headers={"Authorization": f"Bearer {bad_jwt}"},
        timeout=30,
    )
    assert answer.status_code == 401
    # A token as an inline literal and as a variable: the document and arguments stay out.
    stream_token = stream.rsplit("/", 1)[1]
    inline = service.graphql(f'{{ media(id: "{stream_token}") {{ id }} }}', token=token)
    assert inline["data"] is None or inline["data"]["media"] is None
    service.graphql("query Q($id: ID!) { media(id: $id) { id } }", {"id": stream}, token=token)
    shared = _share(service, token, media["id"])
    tokens = {u.rsplit("/", 1)[1] for u in (stream, download, thumb, tampered, media["uploadUrl"])}
    found = {token, bad_jwt, stream, download, thumb, tampered, media["uploadUrl"], *tokens}
    found |= shared | _hls(urls["hlsUrl"]["url"])
    # Parts long enough to be unmistakable: the signature of the JWT, each token's body.
    found |= {token.rsplit(".", 1)[1], *(t.split(".", 1)[1][:24] for t in tokens)}
    return media, found


def _hls(master: str) -> set[str]:
    """The ladder (on by default) under its token: playlists, a segment, names it never wrote."""
    base = master.rsplit("/", 1)[0]
    assert httpx.get(master, timeout=30).status_code == 200
    variant = next(line for line in httpx.get(master, timeout=30).text.splitlines() if "/" in line)
    assert httpx.get(f"{base}/{variant}", timeout=30).status_code == 200
    segment = f"{base}/{variant.rsplit('/', 1)[0]}/seg_00001.m4s"
    assert httpx.get(segment, headers={"Range": "bytes=0-99"}, timeout=30).status_code == 206
    assert httpx.get(f"{base}/nothing.m4s", timeout=30).status_code == 404
    token = base.rsplit("/", 1)[1]
    return {master, token, token.split(".", 1)[1][:24]}


def _share(service: RunningService, token: str, media_id: str) -> set[str]:
    """A password-protected share link: its page, its media through it, a wrong password."""
    password = "guard-password-8c1f"
    link = create_link(service, token, [media_id], password=password)
    assert httpx.get(link["url"], timeout=30).status_code == 200  # the password form
    refused = httpx.post(link["url"], data={"password": password}, timeout=30)
    assert refused.status_code == 403  # no form token: refused, still without a token anywhere
    assert shared(service, link["token"], "nope-nope")["data"]["sharedMedia"] is None
    through = shared(service, link["token"], password)
    (item,) = through["data"]["sharedMedia"]["medias"]
    shared_stream = item["streamUrl"]["url"]
    assert httpx.get(shared_stream, headers={"Range": "bytes=0-9"}, timeout=30).status_code == 206
    return {link["token"], link["url"], password, shared_stream, shared_stream.rsplit("/", 1)[1]}


def _spans(served: Proc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in served.stdout.splitlines() if line.startswith("{")]


def _log_lines(served: Proc) -> list[dict[str, Any]]:
    return [json.loads(line) for line in served.stderr.splitlines() if line.startswith("{")]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_no_token_in_metrics_spans_or_logs(tmp_path: Path) -> None:
    port = free_port()
    metrics_token = secrets.token_urlsafe(24)
    env = clean_env(
        MEDIA_DATA_DIR=str(tmp_path / "data"),
        MEDIA_PUBLIC_URL=f"http://127.0.0.1:{port}",
        MEDIA_LOG_FORMAT="json",
        MEDIA_LOG_LEVEL="DEBUG",  # whatever any library logs, too
        MEDIA_METRICS_TOKEN=metrics_token,
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="media-guard",
    )
    source = make_mp4(tmp_path / "clip.mp4", seconds=1.0, faststart=False)
    with serve_process(env, port, tmp_path / "out") as served:
        base = served.url
        settings = load_settings(env)
        token = dev_issuer(settings, base).mint("guard", ["user"], audience=settings.oidc_audience)
        service = RunningService(url=base, settings=settings, mint=lambda *_: token)
        _media, found = _drive(service, token, source)
        assert httpx.get(f"{base}/metrics", timeout=30).status_code == 401
        wrong = {"Authorization": f"Bearer {metrics_token}x"}
        assert httpx.get(f"{base}/metrics", headers=wrong, timeout=30).status_code == 401
        auth = {"Authorization": f"Bearer {metrics_token}"}
        scraped = httpx.get(f"{base}/metrics", headers=auth, timeout=30)
        assert scraped.status_code == 200
        metrics = scraped.text
    found.add(metrics_token)
    for secret in found:
        assert secret not in metrics, secret
        assert secret not in served.stdout, secret
        assert secret not in served.stderr, secret
    _check_metrics(_samples(metrics))
    _check_spans(_spans(served))
    _check_logs(_log_lines(served))


def _check_metrics(samples: dict[Any, float]) -> None:
    requests = "media_http_requests_total"
    assert _value(samples, requests, route="/media/{token}", method="GET", status="206") >= 2
    assert _value(samples, requests, route="/upload/{token}", method="PUT", status="202") == 1
    assert _value(samples, requests, route="/graphql", method="POST", status="401") == 1
    for outcome in ("full", "single", "multi", "not_modified", "unsatisfiable", "head", "refused"):
        assert _value(samples, "media_range_requests_total", outcome=outcome) >= 1, outcome
    route = "/hls/{token}/{name}"
    assert _value(samples, requests, route=route, method="GET", status="200") >= 2
    assert _value(samples, requests, route=route, method="GET", status="404") == 1
    assert _value(samples, requests, route="other", method="GET", status="404") == 1
    assert _value(samples, requests, route="other", method="DELETE", status="405") == 1
    for purpose in ("stream", "download", "thumbnail", "hls"):
        assert _value(samples, "media_bytes_served_total", purpose=purpose) > 0, purpose
    # Time to first byte counts the answers that carry (part of) an object: a GET answered 200
    # or 206, never a refusal's or an error's body (a 416, a 403, a 404).
    objects = sum(
        _value(samples, requests, route=byte_route, method="GET", status=status)
        for byte_route in ("/media/{token}", route)
        for status in ("200", "206")
    )
    assert _value(samples, "media_stream_first_byte_seconds_count") == objects >= 5
    assert (
        _value(
            samples, "media_http_request_duration_seconds_count", route="/graphql", method="POST"
        )
        >= 4
    )
    storage = "media_storage_operations_total"
    assert _value(samples, storage, backend="local", operation="read", outcome="ok") >= 5
    assert _value(samples, storage, backend="local", operation="write", outcome="ok") >= 1
    assert _value(samples, "media_uploads_total", outcome="done") == 1
    for stage in ("sniff", "probe", "rendition", "thumbnail", "hls"):
        count = "media_processing_seconds_count"
        assert _value(samples, count, stage=stage, outcome="ok") == 1, stage
    checks = "media_signed_url_checks_total"
    assert _value(samples, checks, result="ok") >= 8
    assert _value(samples, checks, result="bad_signature") == 1


def _check_spans(spans: list[dict[str, Any]]) -> None:
    names = {span["name"] for span in spans}
    expected = {
        "GET /media/{token}",
        "HEAD /media/{token}",
        "GET /hls/{token}/{name}",
        "PUT /upload/{token}",
        "GET /s/{token}",
        "POST /s/{token}",
        "POST /graphql",
        "mutation",  # the anonymous createUpload of tests.support.flow
        "query Urls",
        "storage read",
        "storage write",
        "db get_media",
        "processing probe",
        "processing thumbnail",
    }
    assert expected <= names, expected - names
    assert all(span["resource"]["attributes"]["service.name"] == "media-guard" for span in spans)
    servers = [span for span in spans if span["kind"] == "SpanKind.SERVER"]
    for span in servers:
        attributes = span["attributes"]
        assert attributes["url.path"] == attributes["http.route"]
        assert span["name"] == f"{attributes['http.request.method']} {attributes['http.route']}"
    traced = [s for s in servers if s["context"]["trace_id"] == f"0x{TRACE_ID}"]
    assert len(traced) == 1 and traced[0]["parent_id"] == f"0x{PARENT_SPAN_ID}"
    # One span per GraphQL operation, none per resolver: at most one under each POST /graphql.
    graphql_servers = {s["context"]["span_id"] for s in servers if s["name"] == "POST /graphql"}
    operations = [s for s in spans if s["parent_id"] in graphql_servers]
    assert len(operations) == len({s["parent_id"] for s in operations})
    for span in operations:
        assert not any(key.startswith("graphql.param") for key in span["attributes"])
        assert "graphql.document" not in span["attributes"]


def _check_logs(lines: list[dict[str, Any]]) -> None:
    requests = [line for line in lines if "route" in line]
    assert requests, "no request log lines"
    for line in requests:
        assert {
            "timestamp",
            "level",
            "request_id",
            "trace_id",
            "status",
            "bytes",
            "duration_ms",
        } <= set(line)
    refused = sorted(
        (line["method"], line["status"]) for line in requests if line["route"] == "other"
    )
    assert refused == [("DELETE", 405), ("GET", 404)], refused
    assert not any("no-such-path" in json.dumps(line) for line in lines)
    traced = [line for line in requests if line["trace_id"] == TRACE_ID]
    assert (
        len(traced) == 1 and traced[0]["route"] == "/media/{token}" and traced[0]["status"] == 206
    )
    assert len({line["request_id"] for line in requests}) == len(requests)
