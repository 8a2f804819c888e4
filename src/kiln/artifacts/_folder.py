"""The sha256 of every file in a local folder, keyed by its relative path."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from kiln.artifacts._cas import sha256_file

__all__ = ["hash_folder"]


def hash_folder(folder: str | os.PathLike[str], *, skip: Collection[str] = ()) -> dict[str, str]:
    """The sha256 hex digest of every file under `folder`, by POSIX relative path, sorted.

    Args:
        folder: A local folder.
        skip: File names (not paths) to leave out, such as a manifest that lists the
            others' digests.
    """
    root = Path(folder)
    return {
        p.relative_to(root).as_posix(): sha256_file(p)[0]
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip
    }
