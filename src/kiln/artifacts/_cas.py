"""A content-addressed blob store over any fsspec filesystem.

Blobs live at `<root>/objects/<first two hex digits>/<sha256>`. Writing the same bytes
twice stores them once. Reading takes the sha256 the caller expects (from the metadata
store, never from a file beside the blob) and refuses bytes that do not match it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from kiln._exceptions import ArtifactError, ArtifactIntegrityError

__all__ = ["ArtifactStore", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Return the sha256 hex digest and the size in bytes of a local file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class ArtifactStore:
    """Content-addressed blobs under one root (a local folder or an fsspec URL).

    Args:
        root: A folder path or a URL such as `s3://bucket/kiln`.
    """

    def __init__(self, root: str) -> None:
        import fsspec

        self.root = root.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root)
        self.local = "file" in _protocols(self.fs)

    def _key(self, sha: str) -> str:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ArtifactError(f"{sha!r} is not a sha256 hex digest.")
        return f"{self._base}/objects/{sha[:2]}/{sha}"

    def location(self, sha: str) -> str:
        """Where the blob with this digest lives (a path or URL)."""
        key = self._key(sha)
        return key if self.local else self.fs.unstrip_protocol(key)

    def exists(self, sha: str) -> bool:
        """Whether a blob with this digest is stored."""
        return bool(self.fs.exists(self._key(sha)))

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a local file; return its sha256 and size."""
        sha, size = sha256_file(path)
        key = self._key(sha)
        if self.fs.exists(key):
            try:
                self.verify(sha)
                self._touch(key)
                return sha, size
            except (ArtifactIntegrityError, FileNotFoundError):
                pass  # damaged or just removed: write it again from this good source
        self.fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        if self.local:
            # Copy to a unique temporary name, then rename: readers never see half a blob.
            tmp = f"{key}.{uuid.uuid4().hex}.tmp"
            shutil.copyfile(path, tmp)
            os.replace(tmp, key)
        else:
            self.fs.put_file(os.fspath(path), key)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store bytes; return their sha256 and size."""
        if self.local:
            # Hash in memory; write straight to a temporary name beside the blob.
            sha = hashlib.sha256(data).hexdigest()
            key = self._key(sha)
            if os.path.exists(key):
                try:
                    self.verify(sha)
                    self._touch(key)
                    return sha, len(data)
                except (ArtifactIntegrityError, FileNotFoundError):
                    pass  # damaged or just removed: write it again
            folder = os.path.dirname(key)
            if not os.path.isdir(folder):
                os.makedirs(folder, exist_ok=True)
            tmp = f"{key}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, key)
            return sha, len(data)
        with tempfile.NamedTemporaryFile(delete=False) as fh:
            fh.write(data)
        try:
            return self.put_file(fh.name)
        finally:
            os.unlink(fh.name)

    def verify(self, sha: str, *, label: str = "") -> None:
        """Recompute the blob's digest; raise `ArtifactIntegrityError` when it differs."""
        key = self._key(sha)
        name = label or sha
        if not self.fs.exists(key):
            raise ArtifactIntegrityError(
                f"Artifact {name} is missing from the artifact store (expected at "
                f"{self.location(sha)}). It was deleted or the artifact root moved."
            )
        digest = hashlib.sha256()
        with self.fs.open(key, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        actual = digest.hexdigest()
        if actual != sha:
            raise ArtifactIntegrityError(
                f"Artifact {name} at {self.location(sha)} has been changed or truncated: its "
                f"sha256 is {actual}, but {sha} was recorded when it was logged. "
                "It will not be used. Re-log it from its source."
            )

    def open(self, sha: str, *, label: str = "") -> IO[bytes]:
        """Open a blob for reading, after checking its digest."""
        self.verify(sha, label=label)
        return self.fs.open(self._key(sha), "rb")

    def read_bytes(self, sha: str, *, label: str = "") -> bytes:
        """Read a whole blob, checking its digest on the bytes returned."""
        key = self._key(sha)
        if not self.fs.exists(key):
            self.verify(sha, label=label)  # raises the "missing" error
        data: bytes = self.fs.cat_file(key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            self.verify(sha, label=label)
        return data

    def get_file(self, sha: str, dest: str | os.PathLike[str], *, label: str = "") -> Path:
        """Copy a blob to a local file, checking the digest of what was written."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".{uuid.uuid4().hex}.part")
        key = self._key(sha)
        if not self.fs.exists(key):
            self.verify(sha, label=label)  # raises the "missing" error
        self.fs.get_file(key, str(tmp))
        actual, _ = sha256_file(tmp)
        if actual != sha:
            tmp.unlink(missing_ok=True)
            self.verify(sha, label=label)
        os.replace(tmp, dest)
        return dest

    def iter_digests(self) -> Iterator[tuple[str, int]]:
        """Every stored blob's digest and size."""
        base = f"{self._base}/objects"
        if not self.fs.exists(base):
            return
        for info in self.fs.find(base, detail=True).values():
            name = str(info["name"]).rsplit("/", 1)[-1]
            if len(name) == 64:
                yield name, int(info.get("size") or 0)

    def _touch(self, key: str) -> None:
        """A blob stored again gets a fresh time: `kiln store gc` spares recent blobs,
        and this one is about to be referenced."""
        if self.local:
            os.utime(key)

    def modified(self, sha: str) -> float | None:
        """When the blob was last stored (seconds since the epoch), or None if unknown."""
        key = self._key(sha)
        try:
            if self.local:
                return os.path.getmtime(key)
            return float(self.fs.modified(key).timestamp())
        except (NotImplementedError, OSError):
            return None

    def delete(self, sha: str) -> None:
        """Remove a blob (used by garbage collection only)."""
        self.fs.rm_file(self._key(sha))


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
