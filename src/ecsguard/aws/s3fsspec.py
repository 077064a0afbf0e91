"""DuckDB reads the S3 store's Parquet objects through this fsspec filesystem.

DuckDB's own S3 support is its httpfs extension, which it downloads at run time (not possible
offline, and no PyPI package ships it for our DuckDB version); s3fs, the usual fsspec S3
filesystem, pins an older botocore than boto3 needs. So this small read-only filesystem wraps the
store's own boto3 client: the same endpoint, credentials and retries as the writes. DuckDB asks
for sizes and byte ranges (the Parquet footer, then the row groups it needs), so only those bytes
travel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

if TYPE_CHECKING:
    from ecsguard.aws.s3store import S3FS

#: bytes fetched per request: a Parquet row group of the store is a few MB
BLOCK_SIZE = 8 * 1024 * 1024


class S3Files(AbstractFileSystem):
    """Read-only `s3://` paths of one store (register it with `con.register_filesystem`)."""

    protocol = ("s3", "s3a")
    cachable = False  # one instance per store: fsspec must not hand another store's client out

    def __init__(self, store: S3FS, **options: Any) -> None:
        super().__init__(**options)
        self.store = store

    def _path(self, path: str) -> str:
        return self.store.path_of(self._strip_protocol(path))

    def info(self, path: str, **_: Any) -> dict[str, Any]:
        size, modified = self.store.stat(self._path(path))
        return {"name": self._strip_protocol(path), "size": size, "type": "file", "mtime": modified}

    def ls(self, path: str, detail: bool = True, **_: Any) -> list[Any]:
        base = self._path(path)
        paths = self.store.list(base)
        if not detail:
            return [self.store.uri(p) for p in paths]
        return [self.info(self.store.uri(p)) for p in paths]

    def modified(self, path: str) -> datetime:
        return datetime.fromtimestamp(self.info(path)["mtime"], UTC)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> _S3File:
        if mode != "rb":
            raise PermissionError("the S3 store is read-only to queries")
        return _S3File(
            self,
            path,
            mode,
            block_size=block_size or BLOCK_SIZE,
            cache_options=cache_options,
            size=self.info(path)["size"],
            **kwargs,
        )


class _S3File(AbstractBufferedFile):
    def _fetch_range(self, start: int, end: int) -> bytes:
        fs: S3Files = self.fs
        return fs.store.read_range(fs._path(self.path), start, min(end, self.size))
