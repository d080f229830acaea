"""Where the result store's bytes live: a local directory (the default) or any filesystem URI.

`open_files(root)` returns the one small interface the store needs (put whole files, get them, list and stat them):
- a plain path (or `file://`): `LocalFiles`, writes go to a temporary file in the target directory, are fsynced
  and renamed over the final name, so a reader sees the whole file or none of it;
- a URI (`s3://bucket/prefix`, `gs://...`, `hdfs://...`, or any fsspec protocol such as `memory://`):
  `UriFiles` over a pyarrow filesystem. Object stores have no rename, but one object upload is atomic (the object
  appears whole when the upload completes), so every file is serialised in memory first and written as one object.
  Credentials and endpoints come from the usual places (for S3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
  AWS_ENDPOINT_URL for S3-compatible servers, or URI options like `?endpoint_override=host:port&scheme=http`).

Either way a file written is whole or absent; what ties files together (a results file and its manifest entry) is
the store's business (rmorch.orchestrator.store.results).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

import pyarrow as pa

from rmorch.core.errors import UserError

T = TypeVar("T")
R = TypeVar("R")

_UMASK = os.umask(0)
os.umask(_UMASK)


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime: float | None  # seconds since the epoch (None where the filesystem does not say)


class Files(Protocol):
    root: str

    def put(self, rel: str, data: bytes) -> None: ...
    def put_from(self, rel: str, write: Callable[[str], None]) -> None: ...
    def get(self, rel: str) -> bytes: ...
    def open_input(self, rel: str) -> pa.NativeFile: ...
    def exists(self, rel: str) -> bool: ...
    def stat(self, rel: str) -> FileStat | None: ...
    def listing(self, rel_dir: str) -> dict[str, FileStat]: ...
    def url(self, rel: str) -> str: ...
    def map(self, fn: Callable[[T], R], values: Iterable[T]) -> list[R]: ...


def is_uri(root: str) -> bool:
    """`scheme://...` (but not a Windows drive letter); `file://` counts as a local path."""
    scheme, sep, _ = root.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme != "file"


def open_files(root: str) -> Files:
    if root.startswith("file://"):
        return LocalFiles(root[len("file://"):])
    if is_uri(root):
        return UriFiles(root)
    return LocalFiles(root)


class LocalFiles:
    """A local directory; atomic writes by temporary file + fsync + rename."""

    def __init__(self, root: str):
        self.root = root

    def _path(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/"))

    def put(self, rel: str, data: bytes) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())

        self.put_from(rel, write)

    def put_from(self, rel: str, write: Callable[[str], None]) -> None:
        """`write(tmp_path)` fills a temporary file beside the target, which is then renamed over it."""
        final = self._path(rel)
        os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(final) or ".", prefix=".tmp-", suffix=os.path.basename(final))
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are for the whole team to read
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def get(self, rel: str) -> bytes:
        with open(self._path(rel), "rb") as f:
            return f.read()

    def open_input(self, rel: str) -> pa.NativeFile:
        """A random-access reader (Parquet reads only the column chunks it needs)."""
        return pa.OSFile(self._path(rel))

    def exists(self, rel: str) -> bool:
        return os.path.isfile(self._path(rel))

    def stat(self, rel: str) -> FileStat | None:
        try:
            st = os.stat(self._path(rel))
        except OSError:
            return None
        return FileStat(st.st_size, st.st_mtime)

    def listing(self, rel_dir: str) -> dict[str, FileStat]:
        """Every file under rel_dir (recursively), by path relative to the root; temporary files left out."""
        out: dict[str, FileStat] = {}
        top = self._path(rel_dir)
        for dirpath, _, names in os.walk(top):
            for name in names:
                if name.startswith(".tmp-"):
                    continue
                full = os.path.join(dirpath, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue  # removed while listing
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                out[rel] = FileStat(st.st_size, st.st_mtime)
        return out

    def url(self, rel: str) -> str:
        return self._path(rel)

    def map(self, fn: Callable[[T], R], values: Iterable[T]) -> list[R]:
        return [fn(v) for v in values]


class UriFiles:
    """A pyarrow filesystem (native S3/GCS/HDFS, else fsspec's) at a URI; each file written as one whole object."""

    THREADS = 16  # object stores answer one request at a time slowly and many at once well

    def __init__(self, root: str):
        import pyarrow as pa
        import pyarrow.fs as pafs

        self.root = root
        base, _, self.query = root.partition("?")
        try:
            self.fs, path = pafs.FileSystem.from_uri(root)
        except (pa.ArrowInvalid, ValueError) as native_error:  # a scheme pyarrow has no native support for
            try:
                import fsspec
            except ImportError:
                raise UserError(f"result store {root}: {native_error} (install fsspec and its plugin for this "
                                f"scheme)") from None
            try:
                fs, path = fsspec.core.url_to_fs(base)
            except (ImportError, ValueError) as e:
                raise UserError(f"result store {root}: {e}") from None
            self.fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
        self.base = path.rstrip("/")
        self.display_base = base.rstrip("/")

    def _path(self, rel: str) -> str:
        return posixpath.join(self.base, rel)

    def put(self, rel: str, data: bytes) -> None:
        parent = posixpath.dirname(self._path(rel))
        if parent:
            self.fs.create_dir(parent, recursive=True)  # no-op on object stores; needed on fsspec's memory://
        with self.fs.open_output_stream(self._path(rel)) as out:
            out.write(data)

    def put_from(self, rel: str, write: Callable[[str], None]) -> None:
        """For libraries that only write to a path (matplotlib): a local temporary file, then one upload."""
        with tempfile.TemporaryDirectory(prefix="rmorch-") as d:
            tmp = os.path.join(d, posixpath.basename(rel))
            write(tmp)
            parent = posixpath.dirname(self._path(rel))
            if parent:
                self.fs.create_dir(parent, recursive=True)
            with open(tmp, "rb") as f, self.fs.open_output_stream(self._path(rel)) as out:
                shutil.copyfileobj(f, out, 1 << 24)  # streamed: a large file (items) never whole in memory

    def get(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self._path(rel)) as f:
            return f.read()

    def open_input(self, rel: str) -> pa.NativeFile:
        """A random-access reader (range requests on object stores)."""
        return self.fs.open_input_file(self._path(rel))

    def exists(self, rel: str) -> bool:
        return self.stat(rel) is not None

    def stat(self, rel: str) -> FileStat | None:
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self._path(rel))
        if info.type != pafs.FileType.File:
            return None
        return FileStat(int(info.size or 0), info.mtime.timestamp() if info.mtime else None)

    def listing(self, rel_dir: str) -> dict[str, FileStat]:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self._path(rel_dir), allow_not_found=True, recursive=True)
        out: dict[str, FileStat] = {}
        prefix = self.base + "/" if self.base else ""
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            path = info.path.lstrip("/") if not self.base.startswith("/") else info.path
            rel = path.removeprefix(prefix)
            out[rel] = FileStat(int(info.size or 0), info.mtime.timestamp() if info.mtime else None)
        return out

    def url(self, rel: str) -> str:
        return f"{self.display_base}/{rel}" + (f"?{self.query}" if self.query else "")

    def map(self, fn: Callable[[T], R], values: Iterable[T]) -> list[R]:
        values = list(values)
        if len(values) < 2:
            return [fn(v) for v in values]
        with ThreadPoolExecutor(self.THREADS) as pool:
            return list(pool.map(fn, values))
