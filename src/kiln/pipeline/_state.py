"""The last run's state file: what `kiln run` checks to say "nothing changed" fast.

`<home>/pipeline/state.json` (see `state_dir`) records, after a run, each project source file
that was loaded, the params file and every input file, as (mtime_ns, size, sha256),
plus the target, the overrides and the store. A file counts as unchanged when its
size is the same and either its mtime is too (and not within the racy window of two
seconds before the state was written) or its content hash is. When everything is
unchanged, the user's modules, pandas and SQLAlchemy are never imported.
Only the standard library is used here (and `kiln._settings` and `kiln.store.find_home`,
which import no more).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kiln._settings import get_setting

__all__ = ["STATE_VERSION", "file_records", "read_state", "state_dir", "unchanged", "write_state"]

STATE_VERSION = 1
_RACY_NS = 2_000_000_000


def state_dir(root: Path) -> Path:
    """The folder of the pipeline state and cache index of the project at `root`.

    It lives in the same `.kiln/` folder as the embedded store (`kiln.store.find_home`
    from the project root, `KILN_HOME` included), so one project never has two homes:
    `<home>/pipeline/` when the home is the project's own `.kiln/`, else (a store in a
    folder above, at the git root, or `KILN_HOME`) `<home>/pipeline/projects/<name>-<hash>/`,
    one folder per project root.
    """
    from kiln.store import find_home

    root = root.resolve()
    home = find_home(root)
    if home == root / ".kiln":
        return home / "pipeline"
    key = hashlib.sha256(os.fsencode(root)).hexdigest()[:10]
    return home / "pipeline" / "projects" / f"{root.name or 'root'}-{key}"


def _sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_records(paths: Iterable[str | os.PathLike[str]]) -> dict[str, list[Any]]:
    """path -> [mtime_ns, size, sha256] for each file ([None, None, None] when absent)."""
    out: dict[str, list[Any]] = {}
    for p in paths:
        path = os.fspath(p)
        try:
            st = os.stat(path)
        except OSError:
            out[path] = [None, None, None]  # absent: its appearance is a change
            continue
        out[path] = [st.st_mtime_ns, st.st_size, _sha(path)]
    return out


def unchanged(records: Mapping[str, list[Any]], written_ns: int) -> str | None:
    """None when every recorded file is unchanged; else the first changed path."""
    for path, (mtime, size, sha) in records.items():
        try:
            st = os.stat(path)
        except OSError:
            if mtime is None:
                continue
            return path
        if mtime is None:
            return path
        if st.st_size != size:
            return path
        if st.st_mtime_ns == mtime and mtime < written_ns - _RACY_NS:
            continue
        if _sha(path) != sha:
            return path
    return None


def read_state(root: Path) -> dict[str, Any] | None:
    """The state of the last run in the project, or None."""
    try:
        data = json.loads((state_dir(root) / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return None
    return data


def write_state(root: Path, data: dict[str, Any]) -> None:
    """Write the state atomically."""
    folder = state_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    data = {**data, "version": STATE_VERSION, "written_ns": time.time_ns()}
    tmp = folder / f"state.json.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, folder / "state.json")


def fingerprint(target: str, overrides: Mapping[str, Any], store: str | None) -> dict[str, Any]:
    """What must match, besides the files, for a run to be a no-op."""
    return {
        "target": target,
        "overrides": json.dumps(dict(overrides), sort_keys=True, default=repr),
        "store": get_setting("store", store or None) or "",
        "home": get_setting("home") or "",
    }


def up_to_date(
    root: Path, target: str, overrides: Mapping[str, Any], store: str | None
) -> dict[str, Any] | None:
    """The last run's state when nothing it depends on changed; else None."""
    state = read_state(root)
    if state is None or not state.get("complete"):
        return None
    if state.get("fingerprint") != fingerprint(target, overrides, store):
        return None
    if unchanged(state.get("files", {}), int(state.get("written_ns", 0))) is not None:
        return None
    return state
