"""The stack's one-shot init job: create the bucket named by MEDIA_STORAGE_URL when missing."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import boto3.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from media.config import StorageUrl, parse_storage_url
from media.errors import ConfigError

ATTEMPTS = 10
BACKOFF_S = 2.0
# docs/security.md INV-3: incomplete multipart uploads are invisible but keep their parts;
# abort them.
ABORT_INCOMPLETE_AFTER_DAYS = 7
_MISSING = frozenset({"404", "NoSuchBucket", "NotFound"})
_ALREADY_OURS = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_ADDRESSING: dict[str, Literal["auto", "virtual", "path"]] = {
    "auto": "auto",
    "virtual": "virtual",
    "path": "path",
}
log = logging.getLogger("create_bucket")


def s3_client(url: StorageUrl, environ: Mapping[str, str]) -> Any:
    """A boto3 client for the store in `url`; retries are ours, so botocore makes one attempt."""
    session = boto3.session.Session(
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
        region_name=url.region or environ.get("AWS_REGION"),
    )
    config = Config(
        connect_timeout=3,
        read_timeout=15,
        retries={"mode": "standard", "total_max_attempts": 1},
        s3={"addressing_style": _ADDRESSING[url.addressing_style]},
    )
    return session.client("s3", endpoint_url=url.endpoint_url, config=config)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def ensure_bucket(client: Any, bucket: str, region: str | None) -> bool:
    """Create `bucket` unless it exists; True when this call created it."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if _code(exc) not in _MISSING:
            raise
    request: dict[str, Any] = {"Bucket": bucket}
    # S3 rejects an explicit LocationConstraint for us-east-1 and requires one everywhere else.
    if region and region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**request)
    except ClientError as exc:
        if _code(exc) in _ALREADY_OURS:
            return False
        raise
    return True


def expire_incomplete_uploads(client: Any, bucket: str) -> bool:
    """Add the abort-incomplete-multipart rule; False when the store does not support lifecycles."""
    rule = {
        "ID": "abort-incomplete-multipart-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_AFTER_DAYS},
    }
    try:
        client.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}
        )
    except ClientError as exc:
        log.warning("lifecycle rule not set on %s: %s", bucket, _code(exc) or "refused")
        return False
    return True


def run(
    environ: Mapping[str, str],
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Exit status: 0 bucket ready, 1 store unreachable or refusing, 2 bad configuration."""
    try:
        url = parse_storage_url(environ.get("MEDIA_STORAGE_URL", ""))
    except ConfigError as exc:
        log.error("MEDIA_STORAGE_URL: %s", exc.detail)
        return 2
    if url.scheme != "s3":
        log.error("MEDIA_STORAGE_URL: expected an s3:// URL, got %s://", url.scheme)
        return 2
    client = s3_client(url, environ)
    region = url.region or environ.get("AWS_REGION")
    for attempt in range(1, attempts + 1):
        try:
            created = ensure_bucket(client, url.bucket, region)
        except NoCredentialsError:
            log.error("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            return 2
        except (BotoCoreError, ClientError) as exc:
            reason = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            log.warning("attempt %d/%d: %s", attempt, attempts, reason)
            if attempt < attempts:
                sleep(BACKOFF_S * attempt)
            continue
        # Only on a bucket we created: the call replaces every lifecycle rule the bucket has.
        if created:
            expire_incomplete_uploads(client, url.bucket)
        log.info("bucket %s %s", url.bucket, "created" if created else "already exists")
        return 0
    log.error("bucket %s: store unreachable after %d attempts", url.bucket, attempts)
    return 1


def main() -> int:
    """Entry point of the init container."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(os.environ)


if __name__ == "__main__":
    sys.exit(main())
