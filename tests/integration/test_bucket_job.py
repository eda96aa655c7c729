"""The create-bucket job of the production stack (deploy/), against moto's S3 server."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import free_port
from tests.support.s3 import s3_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bucket_job() -> ModuleType:
    """deploy/create_bucket.py, the init job, loaded as a module."""
    spec = importlib.util.spec_from_file_location("create_bucket", ROOT / "deploy/create_bucket.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _job_env(endpoint: str, bucket: str, region: str = "us-east-1") -> dict[str, str]:
    url = f"s3://{bucket}?endpoint_url={endpoint}&region={region}&addressing=path"
    return {
        "MEDIA_STORAGE_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected retry sleep of {seconds} s")


def test_bucket_job_creates_once_and_keeps_existing_rules(
    bucket_job: ModuleType, s3_server: str
) -> None:
    bucket = f"media-init-{uuid.uuid4().hex[:12]}"
    client = s3_client(s3_server)
    assert bucket_job.run(_job_env(s3_server, bucket), sleep=_no_sleep) == 0
    (rule,) = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    mine = {
        "ID": "mine",
        "Status": "Enabled",
        "Filter": {"Prefix": "x/"},
        "Expiration": {"Days": 1},
    }
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [mine]}
    )
    assert bucket_job.run(_job_env(s3_server, bucket), sleep=_no_sleep) == 0
    rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [rule["ID"] for rule in rules] == ["mine"]


def test_bucket_job_sets_the_region_outside_us_east_1(
    bucket_job: ModuleType, s3_server: str
) -> None:
    bucket = f"media-init-{uuid.uuid4().hex[:12]}"
    assert bucket_job.run(_job_env(s3_server, bucket, "eu-west-1"), sleep=_no_sleep) == 0
    location = s3_client(s3_server).get_bucket_location(Bucket=bucket)["LocationConstraint"]
    assert location == "eu-west-1"


@pytest.mark.parametrize("url", ["", "file:///srv/objects", "s3://?endpoint_url=x", "ftp://b"])
def test_bucket_job_rejects_a_storage_url_it_cannot_use(bucket_job: ModuleType, url: str) -> None:
    assert bucket_job.run({"MEDIA_STORAGE_URL": url}, sleep=_no_sleep) == 2


def test_bucket_job_without_credentials_is_a_configuration_error(
    bucket_job: ModuleType, s3_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    # Otherwise botocore's chain ends at the EC2 metadata address: loopback traffic only here.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    environ = _job_env(s3_server, "media")
    del environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"]
    assert bucket_job.run(environ, sleep=_no_sleep) == 2


def test_bucket_job_retries_an_unreachable_store(bucket_job: ModuleType, s3_server: str) -> None:
    slept: list[float] = []
    environ = _job_env(f"http://127.0.0.1:{free_port()}", "media")
    assert bucket_job.run(environ, attempts=3, sleep=slept.append) == 1
    assert slept == [bucket_job.BACKOFF_S, 2 * bucket_job.BACKOFF_S]
