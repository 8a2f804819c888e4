"""Records the store could not take: which errors are final, and the recovery file.

When a process ends with records its writer could not write (a full disk, a read-only
store, a database that stayed down), they are saved as JSON lines to a recovery file
next to the store (the folder holding `kiln.db`; for a server store, the embedded
store's folder `.kiln/`), or in the temporary folder when that cannot be written.
`kiln store recover FILE` (`TrackingClient.recover`) writes them to the store later.

The file's first line describes it; every other line is one queued write, `[kind,
payload]`, exactly as the writer queued it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from kiln._exceptions import StoreError
from kiln.store import Store

__all__ = ["FORMAT", "load", "refused_for_good", "rewrite", "save"]

FORMAT = "kiln-recovery/1"


def refused_for_good(exc: BaseException) -> bool:
    """Whether retrying the write that raised `exc` can never succeed.

    A value the database refuses (a constraint, a value of the wrong kind, text that
    cannot be encoded) fails the same way every time; a locked, full, read-only or
    unreachable store may not (it is retried, then saved for recovery).
    """
    from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

    if isinstance(exc, (IntegrityError, DataError)):
        return True
    if isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, StatementError):  # raised before the database saw the statement
        return True
    return isinstance(exc, (UnicodeError, ValueError, TypeError, OverflowError))


def _folder(store: Store) -> Path:
    home = store.home
    if home is None:
        from kiln.store import find_home

        home = find_home()
    return home


def save(store: Store, ops: list[tuple[str, Any]]) -> Path:
    """Write `ops` to a new recovery file for `store`; return its path.

    Raises:
        OSError: Neither the store's folder nor the temporary folder can be written.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"kiln-recovery-{stamp}-{os.getpid()}.jsonl"
    header = {
        "format": FORMAT,
        "store": store.display_url,
        "store_id": getattr(store, "store_id", None),
        "pid": os.getpid(),
        "records": len(ops),
        "created_at": int(time.time() * 1000),
    }
    body = _body(header, ops)
    errors: list[str] = []
    for folder in (_folder(store), Path(tempfile.gettempdir())):
        path = folder / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        return path
    raise OSError("cannot write a recovery file (" + "; ".join(errors) + ")")


def _body(header: dict[str, Any], ops: list[tuple[str, Any]]) -> str:
    # ensure_ascii: a lone surrogate that reached the queue is kept, escaped.
    lines = [json.dumps(header)] + [json.dumps([kind, payload]) for kind, payload in ops]
    return "\n".join(lines) + "\n"


def rewrite(
    path: str | os.PathLike[str], header: dict[str, Any], ops: list[tuple[str, Any]]
) -> None:
    """Replace a recovery file's records with `ops` (those not written yet)."""
    file = Path(path)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(_body({**header, "records": len(ops)}, ops), encoding="utf-8")
    os.replace(tmp, file)


def _as_op(kind: str, payload: Any) -> tuple[str, Any]:
    """A queued write as the writer made it (JSON turned its tuples into lists)."""
    if kind == "metric":
        payload = tuple(payload)
    elif kind == "metrics":
        payload = [tuple(row) for row in payload]
    elif kind in ("run", "update"):
        payload = (payload[0], payload[1])
    return kind, payload


def load(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """Read a recovery file: its header and its queued writes.

    Raises:
        StoreError: The file cannot be read or is not a kiln recovery file.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise StoreError(
            f"Cannot read the recovery file {file}: {exc.strerror or exc}. Give the path "
            "kiln printed when the records were saved (kiln-recovery-*.jsonl)."
        ) from exc
    lines = text.splitlines()
    expected = (
        "expected the kiln-recovery-*.jsonl file kiln wrote when it could not write to the store."
    )
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError as exc:
        raise StoreError(f"{file} is not a kiln recovery file ({exc}); {expected}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise StoreError(
            f"{file} is not a kiln recovery file (its first line is no kiln recovery header); "
            f"{expected}"
        )
    try:
        ops = [_as_op(*json.loads(line)) for line in lines[1:] if line.strip()]
    except (ValueError, TypeError, IndexError) as exc:
        raise StoreError(f"{file} is not a kiln recovery file ({exc}); {expected}") from exc
    return header, ops
