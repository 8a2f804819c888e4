"""Git for kiln's template: the project's own repo and the template history kept in it.

Copier's three-way update renders the template at the version a project was made from
and at the new one, so both must be in a git repository with version tags. kiln ships
only the current template, so `kiln init` keeps each version it renders in a bare
repository inside the project's `.git/` folder (`.git/kiln-template.git`): a commit per
template version, tagged with it. It is outside the work tree (the project stays clean)
and moves with the project folder; a fresh clone does not carry it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kiln._exceptions import ConfigurationError

__all__ = ["TEMPLATE_REPO", "commit_all", "git", "has_git", "store_template"]

TEMPLATE_REPO = ".git/kiln-template.git"
# The template history's commits are made by kiln at a fixed date, so one template
# version always gives the same commit.
_KILN_IDENTITY = {
    "GIT_AUTHOR_NAME": "kiln",
    "GIT_AUTHOR_EMAIL": "kiln@localhost",
    "GIT_COMMITTER_NAME": "kiln",
    "GIT_COMMITTER_EMAIL": "kiln@localhost",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def has_git() -> bool:
    """Whether a `git` executable is on PATH."""
    return shutil.which("git") is not None


def git(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Run git in `cwd`; its stdout. Raises ConfigurationError naming the command on failure."""
    full_env = {**os.environ, **(env or {})}
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        full_env.pop(key, None)
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigurationError(f"`git {' '.join(args)}` could not run in {cwd}: {exc}") from exc
    if check and done.returncode != 0:
        raise ConfigurationError(
            f"`git {' '.join(args)}` failed in {cwd}: {(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def _identity(cwd: Path) -> dict[str, str]:
    """kiln's identity for a commit where the user has set none (a fresh machine, CI)."""
    name = git("config", "user.name", cwd=cwd, check=False).strip()
    email = git("config", "user.email", cwd=cwd, check=False).strip()
    env: dict[str, str] = {}
    if not name and "GIT_AUTHOR_NAME" not in os.environ:
        env.update(GIT_AUTHOR_NAME="kiln", GIT_COMMITTER_NAME="kiln")
    if not email and "GIT_AUTHOR_EMAIL" not in os.environ:
        env.update(GIT_AUTHOR_EMAIL="kiln@localhost", GIT_COMMITTER_EMAIL="kiln@localhost")
    return env


def commit_all(root: Path, message: str) -> None:
    """Stage every file in `root` (a git work tree) and commit it."""
    git("add", "--all", cwd=root)
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=root, env=_identity(root))


def store_template(project: Path, source: Path, version: str) -> Path:
    """Keep the template folder `source` in the project's template history, tagged `version`.

    Args:
        project: The project root (a git work tree whose `.git` is a folder).
        source: The template folder (holding copier.yml).
        version: The template version, a PEP 440 version such as 1.0.0.

    Returns:
        The bare repository (absolute path).
    """
    repo = project / TEMPLATE_REPO
    if not repo.is_dir():
        if not (project / ".git").is_dir():
            raise ConfigurationError(
                f"{project} is not the root of a git repository with a .git folder; kiln "
                "keeps the project's template history there. Run `git init` in it first."
            )
        git("init", "--quiet", "--bare", str(repo), cwd=project)
    if git("tag", "--list", version, cwd=repo).strip():
        return repo
    index = repo / "kiln-index"
    base = {**os.environ, **_KILN_IDENTITY, "GIT_DIR": str(repo), "GIT_INDEX_FILE": str(index)}
    base.pop("GIT_WORK_TREE", None)

    def run(*args: str) -> str:
        done = subprocess.run(
            ["git", "--work-tree", str(source), *args],
            cwd=source,
            env=base,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise ConfigurationError(
                f"Could not record template version {version} in {repo}: "
                f"`git {' '.join(args)}` said {(done.stderr or done.stdout).strip()}"
            )
        return done.stdout.strip()

    try:
        run("add", "--all", "--force", ".")
        tree = run("write-tree")
        parents = git("for-each-ref", "--format=%(objectname)", "refs/heads/main", cwd=repo)
        args = ["commit-tree", tree, "-m", f"kiln template {version}"]
        if parents.strip():
            args += ["-p", parents.strip()]
        commit = run(*args)
        run("update-ref", "refs/heads/main", commit)
        run("tag", version, commit)
    finally:
        index.unlink(missing_ok=True)
    return repo
