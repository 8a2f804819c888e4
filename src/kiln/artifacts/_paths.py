"""Paths read from the store, checked before anything is written under them.

An artifact row (a shared PostgreSQL store, a `.kiln` folder received from someone) or a
pipeline cache entry names where a file goes inside a destination folder. A path that
is absolute, names a drive, or has a `..` part would write outside that folder, so it
is refused, naming it, before any file is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from kiln._exceptions import ArtifactPathError

__all__ = ["check_relative_path", "inside"]


def check_relative_path(rel: object, what: str = "Artifact path") -> str:
    """`rel` when it is a relative path that stays inside its folder.

    Raises:
        ArtifactPathError: `rel` is empty, absolute, names a drive or holds a `..` part.
    """
    text = rel if isinstance(rel, str) else None
    parts = [] if text is None else text.replace("\\", "/").split("/")
    bad = (
        text is None
        or not text.strip()
        or "\0" in text
        or text.startswith(("/", "\\"))
        or (len(text) > 1 and text[1] == ":")  # C:\ or C:relative on Windows
        or ".." in parts
    )
    if bad:
        raise ArtifactPathError(
            f"{what} {rel!r} is not a relative path inside its folder (it is empty, "
            "absolute, or has a '..' part), so nothing was written. Expected a path such as "
            "'model/model.skops'. kiln never records such a path: the entry was made or "
            "edited outside kiln; remove it, or log the artifact again."
        )
    return text  # type: ignore[return-value]


def inside(
    dest: str | os.PathLike[str], rels: Iterable[object], what: str = "Artifact path"
) -> list[Path]:
    """The local targets of `rels` under `dest`, every one checked before any is used.

    Raises:
        ArtifactPathError: A path would reach outside `dest` (named in the message).
    """
    base = Path(dest)
    root = base.resolve()
    out = []
    for rel in rels:
        target = base / check_relative_path(rel, what)
        resolved = target.resolve()
        if resolved != root and root not in resolved.parents:  # through a symlink
            raise ArtifactPathError(
                f"{what} {rel!r} leads to {resolved}, outside {root} (through a link), so "
                "nothing was written."
            )
        out.append(target)
    return out
