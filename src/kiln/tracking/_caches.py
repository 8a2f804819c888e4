"""What tracking remembers within a process, and `clear_caches` to forget it.

A small module of its own so that `kiln.tracking` can export `clear_caches` without
importing what fills the caches (`_env` starts git subprocesses).
"""

from __future__ import annotations

from typing import Any

__all__ = ["GIT_TTL", "clear_caches", "git_cache"]

GIT_TTL = 1.0  # seconds a repository's state is reused for runs started in a row

# Working directory -> (monotonic time read, the git state `_env.git_state` read there).
git_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def clear_caches() -> None:
    """Forget what tracking remembers about this process's surroundings.

    A run records the state of the git repository it starts in (commit, branch, dirty,
    diff). Reading it costs a few subprocesses, so runs started within `GIT_TTL` (1)
    seconds of each other (a sweep's trials, a pipeline's steps) share one reading.
    Call this after changing the repository (a commit, an edit) to make the next run
    read it afresh at once, as tests and scripts that edit and then start a run do.
    """
    git_cache.clear()
