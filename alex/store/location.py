"""Where a store lives: a local folder, or an fsspec URL (``s3://bucket/path``, ``gs://...``,
``memory://...``). Object stores are reached through fsspec with the standard environment for
credentials and endpoints (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``...); their filesystems are
optional extras (``pip install "alex[s3]"``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alex.errors import UsageError

# protocol -> (the package that provides it, alex's extra that installs it)
EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
          "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure"), "abfss": ("adlfs", "azure")}


def is_url(store: str | Path) -> bool:
    return isinstance(store, str) and "://" in store and not store.startswith("file://")


def store_location(store: str | Path) -> str | Path:
    """A URL stays text (``Path`` would fold ``s3://`` into ``s3:/``); anything else is a local path."""
    text = str(store)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    return text.rstrip("/") if "://" in text else Path(store)


@dataclass
class RemoteStore:
    """A store under an fsspec URL: ``fs`` and its root ``path`` (without the protocol)."""

    url: str
    fs: Any
    path: str

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0]

    def join(self, *parts: str) -> str:
        return "/".join([self.path.rstrip("/"), *parts])

    def url_of(self, path: str) -> str:
        """The URL of a path of this filesystem (what DuckDB, once the filesystem is registered, reads)."""
        return f"{self.protocol}://{path}"

    def __str__(self) -> str:
        return self.url


def remote(url: str) -> RemoteStore:
    """Open the filesystem of a store URL; an unknown protocol or a missing package is a usage error
    naming what to install."""
    import fsspec

    protocol = url.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        package, extra = EXTRAS.get(protocol, (None, None))
        how = f'pip install "alex[{extra}]" (or {package})' if extra else "install the fsspec filesystem for it"
        raise UsageError(f"--store {url}: the {protocol}:// filesystem is not installed; {how} ({exc})") from None
    except ValueError:
        raise UsageError(f"--store {url}: unknown protocol {protocol!r} (fsspec knows: s3, gs, az, memory, ...)") from None
    fs, path = fsspec.core.url_to_fs(url)
    return RemoteStore(url.rstrip("/"), fs, path.rstrip("/"))


def local_copy(rs: RemoteStore, path: str, cache: str | Path | None = None) -> str:
    """A local file holding a remote file, through fsspec's file cache (downloaded once, kept under
    ``cache``, default ``~/.cache/alex/remote``): how HDF5 shards and frames tables are read."""
    import fsspec

    cache = Path(cache or Path.home() / ".cache" / "alex" / "remote")
    return fsspec.open_local(f"filecache::{rs.url_of(path)}", filecache={"cache_storage": str(cache)},
                             **{rs.protocol: dict(rs.fs.storage_options)})
