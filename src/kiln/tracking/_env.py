"""What a run records about where it ran: user, host, command, git state, Python, packages."""

from __future__ import annotations

import functools
import getpass
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
from typing import Any

from kiln.tracking._caches import GIT_TTL, git_cache

__all__ = ["GIT_TTL", "canonical_name", "capture_environment", "git_state"]

_MAX_DIFF = 1_000_000  # bytes of uncommitted diff kept with a run


def _git(*args: str, cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("utf-8", "replace")


def git_state(cwd: str | None = None) -> dict[str, Any]:
    """The commit, branch, dirty flag and uncommitted diff of the repository at `cwd`.

    Returns empty values outside a git repository or where git is not installed. The
    diff (tracked files only) is cut at 1 MB, with a note saying so.
    """
    cwd = cwd or os.getcwd()
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit is None:
        return {"git_commit": None, "git_branch": None, "git_dirty": None, "git_diff": None}
    branch = (_git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd) or "").strip() or None
    diff = _git("diff", "HEAD", "--no-color", "--no-ext-diff", cwd=cwd) or ""
    if len(diff) > _MAX_DIFF:
        diff = diff[:_MAX_DIFF] + f"\n[kiln: diff cut at {_MAX_DIFF} bytes]\n"
    return {
        "git_commit": commit.strip(),
        "git_branch": branch,
        "git_dirty": bool(diff),
        "git_diff": diff or None,
    }


def canonical_name(name: str) -> str:
    """A distribution's name as PEP 503 compares them: `Scikit_Learn` -> `scikit-learn`."""
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _packages() -> str:
    """The installed distributions as a JSON object {canonical name: version}.

    Read from the `<name>-<version>.dist-info` folder names on `sys.path` (the first one
    found wins, as for imports): parsing every distribution's METADATA file through
    `importlib.metadata` cost a fresh process 0.1-0.3 s, longer than the rest of a run.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                project, _, version = folder[: -len(".dist-info")].partition("-")
                if project and version:
                    found.setdefault(canonical_name(project), version)
    return json.dumps(dict(sorted(found.items())))


def installed_packages() -> dict[str, str]:
    """The installed distributions, {canonical name: version} (as a run records them)."""
    return dict(json.loads(_packages()))


def _entry_point() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path:
        return os.path.abspath(path)
    if "ipykernel" in sys.modules:
        return "<notebook>"
    return "<interactive>" if hasattr(sys, "ps1") else None


def _cached_git_state() -> dict[str, Any]:
    cwd = os.getcwd()
    now = time.monotonic()
    hit = git_cache.get(cwd)
    if hit is None or now - hit[0] > GIT_TTL:
        hit = (now, git_state(cwd))
        git_cache[cwd] = hit
    return dict(hit[1])


@functools.cache
def _process_facts() -> tuple[str | None, str, str]:
    """User, host and Python: fixed for the process (looking the user up can take ms)."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return user, socket.gethostname(), python


def capture_environment(*, packages: bool = True, git: bool = True) -> dict[str, Any]:
    """Everything a run records about its environment, as columns of the runs table."""
    user, host, python = _process_facts()
    env: dict[str, Any] = {
        "user": user,
        "host": host,
        "pid": os.getpid(),
        "entry_point": _entry_point(),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        "python_version": python,
        "packages": _packages() if packages else None,
    }
    if git:
        env.update(_cached_git_state())
    return env
