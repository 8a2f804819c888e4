"""Step outputs in the artifact store, in a format chosen by type, and the cache index.

| value | format |
| --- | --- |
| pandas DataFrame / Series | Parquet |
| numpy array (not of objects) | .npy (no pickle) |
| `kiln.Model` | kiln's saved-model folder (`Model.save(path)`), one blob per file |
| JSON data (None, bool, int, float, str, lists, dicts with str keys) | JSON |
| tuple, list or dict holding any of the above | one blob per item plus a manifest |
| anything else | pickle, with a `PickledOutputWarning` (recorded in the cache entry) |

Pickled outputs and `kiln.Model` outputs carry kiln's HMAC signature (`_signing`): one
is unpickled, or a model loaded with `trust_pickle`, only when kiln itself wrote it with
this artifact store's key, never because a JSON line says so.

A descriptor `{"format": ..., "sha": ...}` names a stored output; its `sha` is the
content hash a dependant's cache key uses. The cache index maps a cache key to the
descriptor and lineage of the output it produced: `CacheIndex`, one JSON-lines file
under the project's pipeline state folder (`kiln.pipeline._state.state_dir`), `cache/`.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

from kiln._exceptions import KilnWarning, PipelineError, UntrustedCodeError
from kiln.pipeline._signing import sign, signed

__all__ = [
    "CacheIndex",
    "PickledOutputWarning",
    "describe_value",
    "load_output",
    "save_output",
]


class PickledOutputWarning(KilnWarning):
    """A step returned a value kiln has no safe format for; it was pickled."""


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return type(value) is int
    if isinstance(value, float):
        return type(value) is float and math.isfinite(value)
    if type(value) is list:
        return all(_is_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def save_output(artifacts: Any, value: Any, *, label: str = "output") -> dict[str, Any]:
    """Store `value`; return its descriptor (format, sha and, for containers, items)."""
    kind = type(value)
    module = kind.__module__.split(".")[0]
    if module == "pandas" and kind.__name__ in ("DataFrame", "Series"):
        frame = value.to_frame() if kind.__name__ == "Series" else value
        if all(isinstance(c, str) for c in frame.columns):
            buf = io.BytesIO()
            frame.to_parquet(buf)
            fmt = "parquet-series" if kind.__name__ == "Series" else "parquet"
            return _put(artifacts, buf.getvalue(), fmt)
    if module == "numpy" and kind.__name__ == "ndarray" and value.dtype.kind != "O":
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return _put(artifacts, buf.getvalue(), "npy")
    if kind.__name__ == "Model" and kind.__module__.startswith("kiln.models"):
        return _save_model(artifacts, value)
    if _is_json(value):
        return _put(artifacts, json.dumps(value).encode("utf-8"), "json")
    if kind in (tuple, list) or (kind is dict and all(isinstance(k, str) for k in value)):
        if kind is dict:
            items: Any = {
                k: save_output(artifacts, v, label=f"{label}[{k!r}]") for k, v in value.items()
            }
        else:
            items = [save_output(artifacts, v, label=f"{label}[{i}]") for i, v in enumerate(value)]
        manifest = json.dumps({"type": kind.__name__, "items": items}, sort_keys=True)
        desc = _put(artifacts, manifest.encode("utf-8"), kind.__name__)
        desc["items"] = items
        return desc
    warnings.warn(
        f"{label} is a {kind.__module__}.{kind.__qualname__}, which kiln has no safe format "
        "for; it was stored with pickle (load it only from a store you trust). Return a "
        "DataFrame, a numpy array, a kiln.Model or JSON data to avoid this.",
        PickledOutputWarning,
        stacklevel=2,
    )
    desc = _put(artifacts, pickle.dumps(value, protocol=5), "pickle")
    desc["warning"] = "pickled"
    desc["hmac"] = sign(artifacts, "pickle", desc["sha"])
    return desc


def _put(artifacts: Any, data: bytes, fmt: str) -> dict[str, Any]:
    sha, size = artifacts.put_bytes(data)
    return {"format": fmt, "sha": sha, "size": size}


def _save_model(artifacts: Any, model: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kiln-step-model-") as tmp:
        folder = Path(tmp) / "model"
        model.save(folder)
        files = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            sha, _ = artifacts.put_file(path)
            files[path.relative_to(folder).as_posix()] = sha
    manifest = json.dumps({"type": "kiln-model", "files": files}, sort_keys=True)
    desc = _put(artifacts, manifest.encode("utf-8"), "kiln-model")
    desc["files"] = files
    desc["hmac"] = sign(artifacts, "kiln-model", desc["sha"])
    return desc


_FORMATS = (
    "kiln-model", "tuple", "list", "dict", "parquet", "parquet-series", "npy", "json", "pickle",
)  # fmt: skip


def load_output(artifacts: Any, desc: dict[str, Any], models_dir: Path) -> Any:
    """The value a descriptor names, read back (every blob checked against its sha256)."""
    fmt = desc["format"]
    if fmt == "kiln-model":
        return _load_model(artifacts, desc, models_dir)
    if fmt in ("tuple", "list", "dict"):
        items = desc["items"]
        if fmt == "dict":
            return {k: load_output(artifacts, v, models_dir) for k, v in items.items()}
        values = [load_output(artifacts, v, models_dir) for v in items]
        return tuple(values) if fmt == "tuple" else values
    data = artifacts.read_bytes(desc["sha"], label=f"pipeline output {desc['sha'][:12]}")
    if fmt in ("parquet", "parquet-series"):
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(data))
        return frame.iloc[:, 0] if fmt == "parquet-series" else frame
    if fmt == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if fmt == "json":
        return json.loads(data)
    if fmt == "pickle":
        if not signed(artifacts, desc):
            raise UntrustedCodeError(
                f"The pickled pipeline output {desc['sha'][:12]} has no valid kiln signature: "
                "kiln did not write it with this artifact store's key (its cache entry may "
                "come from another machine, or have been edited), and unpickling runs code, "
                "so it was not loaded. Run the step again to recompute it (kiln run --force "
                "STEP); see docs/security.md."
            )
        return pickle.loads(data)  # signed by kiln with this store's key
    raise PipelineError(
        f"Unknown pipeline output format {fmt!r} (output {desc['sha'][:12]}); expected one of "
        f"{', '.join(_FORMATS)}. The cache entry may come from a newer kiln: run the step "
        "again to recompute it (kiln run --force STEP)."
    )


def _load_model(artifacts: Any, desc: dict[str, Any], models_dir: Path) -> Any:
    from kiln.artifacts import inside, sha256_file
    from kiln.models import load_model

    sha = desc["sha"]
    artifacts.location(sha)  # a digest, not a path
    # The file list comes from the blob the digest names, not from the JSON entry.
    stored = json.loads(artifacts.read_bytes(sha, label=f"pipeline model {sha[:12]}"))
    files: dict[str, str] = stored["files"]
    targets = inside(models_dir / sha, files, "Pipeline model file")
    for file_sha in files.values():
        artifacts.location(file_sha)  # digests, not paths
    folder = models_dir / sha
    if folder.is_dir() and any(
        not t.is_file() or sha256_file(t)[0] != files[rel]
        for rel, t in zip(files, targets, strict=True)
    ):
        shutil.rmtree(folder, ignore_errors=True)  # changed since kiln wrote it: fetch again
    if not folder.is_dir():
        tmp = models_dir / f"{sha}.{uuid.uuid4().hex}.part"
        for rel, file_sha in files.items():
            artifacts.get_file(file_sha, tmp / rel, label=f"model file {rel}")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process materialized it first
            shutil.rmtree(tmp, ignore_errors=True)
    # A model kiln saved itself (signed with this store's key) may be a pickle fallback.
    return load_model(folder, trust_pickle=signed(artifacts, desc))


def describe_value(value: Any) -> str:
    """A short type-and-shape description for error messages: `DataFrame (100, 4)`."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{kind} {tuple(shape)}"
    if isinstance(value, list | tuple | dict | set | str):
        return f"{kind} of length {len(value)}"
    return kind


class CacheIndex:
    """Cache key -> entry, kept as one append-only JSON-lines file (one line per output).

    Appending a line per finished step is much cheaper than a file per key; the whole
    index is read once per run. Later lines win, so a re-computed key is simply appended.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / "index.jsonl"
        self._entries: dict[str, dict[str, Any]] | None = None
        self._fh: Any = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is None:
            self._entries = {}
            try:
                with open(self.path, encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            entry = json.loads(line)
                        except ValueError:
                            continue  # a line cut short by a crash
                        self._entries[entry["key"]] = entry
            except OSError:
                pass
        return self._entries

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry for `key`, or None."""
        return self._load().get(key)

    def put(self, entry: dict[str, Any]) -> None:
        """Record an entry (appended and flushed at once)."""
        self._load()[entry["key"]] = entry
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._fh.write(json.dumps(entry, sort_keys=True) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
