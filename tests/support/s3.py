"""S3 fixtures: moto's server over HTTP on loopback, fresh buckets, URLs for both backends."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, unavailable

REGION = "us-east-1"
# Dummy credentials: moto accepts any; never real ones, whatever the environment holds.
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}


@functools.cache
def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 S3 client for test set-up and inspection (bucket creation, multipart lists)."""
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; yields its endpoint URL, with dummy AWS_* credentials set."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        unavailable(f"moto[server] is not installed: {exc}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _AWS_ENV.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh, uniquely named bucket; yields `s3://<bucket>?endpoint_url=..&region=..&addressing=path`."""
    bucket = f"media-test-{uuid.uuid4().hex[:20]}"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    return f"s3://{bucket}?endpoint_url={s3_server}&region={REGION}&addressing=path"


@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A storage URL for each backend: `file://<tmp_path>/objects`, then a fresh moto bucket."""
    if request.param == "s3":
        return str(request.getfixturevalue("s3_bucket"))
    return f"file://{tmp_path / 'objects'}"
