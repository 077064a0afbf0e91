"""The Parquet store on S3 (`--store s3://bucket/prefix`): the `FileSystem` of ecsguard.logs.store.

Keys are `<prefix>/<table>/dt=…[/hour=…]/<name>.parquet`, the same tree as on local disk. A file is
written by one whole-object PUT, which S3 makes visible all at once or not at all, so no temporary
name is needed. Listings page through ListObjectsV2 and remember each object's size and time, so
the store's size and age checks cost no extra request. Connection settings follow the AWS CLI
(profile, region, AWS_ENDPOINT_URL, the boto3 credential chain); throttling (SlowDown, 503) is
retried by botocore with backoff. What S3 refuses becomes a StoreError naming the bucket and what
to do; a flush that meets one keeps its WAL segment and tries again later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.exceptions as bce

from ecsguard.aws.session import AwsOptions, AwsSession
from ecsguard.core.errors import UserError
from ecsguard.logs.store import StoreError, StoreLocation

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")

#: error codes that mean the credentials, or their rights, are wrong
_REFUSED = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "403",
    }
)
_THROTTLED = frozenset({"SlowDown", "503", "RequestLimitExceeded", "Throttling"})
_MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
#: DeleteObjects takes at most this many keys
_DELETE_BATCH = 1000


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as (bucket, "some/prefix/") ("" for the bucket's root)."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not url.startswith("s3://") or not bucket:
        raise UserError(
            f"cannot read the store URL {url!r}", "write s3://bucket or s3://bucket/prefix"
        )
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class S3FS:
    """A bucket prefix as the store's filesystem. Thread-safe (boto3 clients are)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", max_attempts: int = 10) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.page_size: int | None = None  # keys per ListObjectsV2 page (None: S3's 1,000)
        # path -> (size, epoch seconds of the last write), from listings and our own writes
        self._meta: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_location(cls, location: StoreLocation) -> S3FS:
        assert location.url is not None
        bucket, prefix = parse_url(location.url)
        session = AwsSession(
            AwsOptions(
                profile=location.profile,
                regions=(location.region,) if location.region else (),
                endpoint_url=location.endpoint_url,
                max_attempts=location.max_attempts,
            )
        )
        try:
            region = session.default_region
        except UserError:  # S3 needs no region to be chosen: us-east-1 redirects
            region = "us-east-1"
        return cls(session.client("s3", region), bucket, prefix, location.max_attempts)

    # -- errors -------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _call(self, action: str, path: str, call: Callable[[], T]) -> T:
        """`call()`, with S3's refusals turned into errors a user can act on."""
        try:
            return call()
        except bce.ClientError as err:
            info = err.response.get("Error", {})
            code = str(info.get("Code", ""))
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                raise self._no_bucket() from None
            if code in _MISSING_KEY or (status == 404 and not code):
                raise FileNotFoundError(f"{self.where}{path}") from None
            if code in _REFUSED or status == 403:
                raise StoreError(
                    f"S3 refused to {action} in bucket {self.bucket!r}: {code}",
                    "check the credentials (AWS_PROFILE, --profile, AWS_ACCESS_KEY_ID) and that "
                    "they allow s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject "
                    f"on {self.where}*",
                ) from None
            if code in _THROTTLED or status == 503:
                raise StoreError(
                    f"S3 is throttling bucket {self.bucket!r} ({code}): {action} still failed "
                    f"after {self.max_attempts} retries with backoff",
                    "nothing acknowledged is lost (the WAL keeps it and the flush retries); "
                    "spread the load over more prefixes or raise the bucket's request rate",
                ) from None
            raise StoreError(
                f"S3 could not {action} in bucket {self.bucket!r}: "
                f"{code} {info.get('Message', '')}".strip(),
                "check the bucket and its policy",
            ) from None
        except bce.NoCredentialsError:
            raise StoreError(
                f"no AWS credentials to reach the store {self.where}",
                "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "or run `aws configure`",
            ) from None
        except (bce.EndpointConnectionError, bce.ConnectTimeoutError, bce.ReadTimeoutError) as err:
            raise StoreError(
                f"cannot reach S3 for the store {self.where}: {err}",
                "check the network, --endpoint-url and AWS_ENDPOINT_URL",
            ) from None

    def _no_bucket(self) -> StoreError:
        return StoreError(
            f"the S3 bucket {self.bucket!r} of the store does not exist",
            f"create it (aws s3 mb s3://{self.bucket}) or fix --store / ECSGUARD_STORE",
        )

    # -- the FileSystem protocol ------------------------------------------------------------------

    def key(self, path: str) -> str:
        return self.prefix + path

    def write_atomic(self, path: str, data: bytes | memoryview) -> None:
        body = data if isinstance(data, bytes) else bytes(data)
        self._call(
            "write",
            path,
            lambda: self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=body),
        )
        with self._lock:
            self._meta.pop(path, None)  # the next listing gives S3's own time

    def list(self, prefix: str) -> list[str]:
        base = self.key(prefix.strip("/"))
        base = f"{base}/" if base and not base.endswith("/") else base

        def pages() -> list[dict[str, Any]]:
            paginator = self.client.get_paginator("list_objects_v2")
            found: list[dict[str, Any]] = []
            config = {"PageSize": self.page_size} if self.page_size else {}
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=base, PaginationConfig=config
            ):
                found.extend(page.get("Contents", []))
            return found

        found = []
        meta = {}
        for item in self._call("list objects", prefix, pages):
            path = item["Key"][len(self.prefix) :]
            if path.rsplit("/", 1)[-1].startswith("."):
                continue  # hidden names are never the store's files, as on local disk
            found.append(path)
            meta[path] = (int(item["Size"]), _epoch(item["LastModified"]))
        with self._lock:
            self._meta.update(meta)
        return sorted(found)

    def read(self, path: str) -> bytes:
        reply = self._call(
            "read", path, lambda: self.client.get_object(Bucket=self.bucket, Key=self.key(path))
        )
        return bytes(reply["Body"].read())

    def read_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of `path` (what a query engine asks for)."""
        if end <= start:
            return b""
        reply = self._call(
            "read",
            path,
            lambda: self.client.get_object(
                Bucket=self.bucket, Key=self.key(path), Range=f"bytes={start}-{end - 1}"
            ),
        )
        return bytes(reply["Body"].read())

    def delete(self, path: str) -> None:
        self._call(
            "delete",
            path,
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.key(path)),
        )
        with self._lock:
            self._meta.pop(path, None)

    def stat(self, path: str) -> tuple[int, float]:
        """(size, epoch seconds of the last write): remembered from a listing, else a HEAD."""
        with self._lock:
            known = self._meta.get(path)
        if known is not None:
            return known
        reply = self._call(
            "read", path, lambda: self.client.head_object(Bucket=self.bucket, Key=self.key(path))
        )
        found = (int(reply["ContentLength"]), _epoch(reply["LastModified"]))
        with self._lock:
            self._meta[path] = found
        return found

    def modified(self, path: str) -> float:
        return self.stat(path)[1]

    def size(self, path: str) -> int:
        return self.stat(path)[0]

    def uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.key(path)}"

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let DuckDB read this bucket's s3:// URIs through this client (no httpfs needed)."""
        from ecsguard.aws.s3fsspec import S3Files

        con.register_filesystem(S3Files(self))

    # -- setup ---------------------------------------------------------------------------------

    def check(self) -> None:
        """Fail now, clearly, if the bucket is missing or refuses us (HeadBucket)."""
        try:
            self._call("list objects", "", lambda: self.client.head_bucket(Bucket=self.bucket))
        except FileNotFoundError:  # HEAD answers a bare 404, without NoSuchBucket
            raise self._no_bucket() from None

    def path_of(self, uri: str) -> str:
        """The store path of one of this filesystem's URIs (or of `bucket/key`)."""
        key = uri.removeprefix("s3://").removeprefix(f"{self.bucket}/")
        if not key.startswith(self.prefix):
            raise FileNotFoundError(uri)
        return key[len(self.prefix) :]


def _epoch(moment: datetime) -> float:
    return moment.timestamp()
