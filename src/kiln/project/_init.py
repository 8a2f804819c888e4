"""`kiln init`: render kiln's template into a new project, and update a project later.

Copier does the rendering and the three-way merge of `copier update`; kiln drives it so
users never call Copier themselves. The template versions a project was made from live
in its `.git/kiln-template.git` (see `kiln.project._git`), which is what lets
`kiln init --update` render the old version beside the new one.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiln._exceptions import ConfigurationError
from kiln._extras import require
from kiln._version import __version__
from kiln._wheel import find_kiln_wheel, uv_executable
from kiln.project._git import TEMPLATE_REPO, commit_all, git, has_git, store_template
from kiln.project._template import resolve_template

__all__ = ["ANSWERS_FILE", "UpdateResult", "init", "update"]

#: The answers file Copier writes into a project: template version and answers.
ANSWERS_FILE = ".copier-answers.yml"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_RESERVED = {"kiln", "test", "tests", "src", "notebooks", "site", "setup"}


@dataclass(frozen=True)
class UpdateResult:
    """What `kiln init --update` did to a project.

    Attributes:
        path: The project root.
        old_version: The template version the project was at.
        new_version: The template version it is at now.
        changed: Files the update changed, added or deleted (relative paths, sorted).
        conflicts: Files where the template and the project changed the same lines; they
            hold both sides between `<<<<<<<` and `>>>>>>>` markers to resolve by hand.
    """

    path: Path
    old_version: str
    new_version: str
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the update merged without conflicts."""
        return not self.conflicts


def package_name(name: str) -> str:
    """The import name of a project: `Churn-Model` -> `churn_model`.

    Raises:
        ConfigurationError: The name cannot name a Python project and package.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"{name!r} cannot name a project: use a letter, then letters, digits, '-' or "
            "'_' (such as churn-model); it becomes the folder, the distribution and, with "
            "'-' as '_', the Python package."
        )
    package = name.lower().replace("-", "_")
    if keyword.iskeyword(package) or package in _RESERVED:
        raise ConfigurationError(
            f"{name!r} cannot name a project: its package {package!r} would clash with "
            f"{'a Python keyword' if keyword.iskeyword(package) else 'a name the project uses'}."
            f" Pick another, such as {package}-model."
        )
    return package


def _copier(feature: str) -> Any:
    return require("copier", "init", feature)


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    # Copier resolves the answers file's relative `_src_path` against the working dir.
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _wheel_answers(kiln_wheel: str | os.PathLike[str] | None) -> tuple[Path | None, dict[str, str]]:
    """The kiln-ml wheel for the project, and the answers naming it and kiln's version."""
    wheel = find_kiln_wheel(kiln_wheel)
    return wheel, {"kiln_version": __version__, "kiln_wheel": wheel.name if wheel else ""}


def _put_wheel(project: Path, wheel: Path | None, old_name: str = "") -> None:
    """Copy the wheel into the project's wheels/, removing the one it replaces."""
    if wheel is None:
        return
    (project / "wheels").mkdir(exist_ok=True)
    target = project / "wheels" / wheel.name
    if not target.exists():
        shutil.copyfile(wheel, target)
    if old_name and old_name != wheel.name and "/" not in old_name:
        (project / "wheels" / old_name).unlink(missing_ok=True)


def init(
    name: str,
    *,
    path: str | os.PathLike[str] | None = None,
    template: str | os.PathLike[str] = "default",
    git: bool = True,
    answers: Mapping[str, Any] | None = None,
    kiln_wheel: str | os.PathLike[str] | None = None,
    lock: bool = True,
) -> Path:
    """Create a project from kiln's template.

    ```python
    from kiln.project import init
    root = init("churn")  # ./churn: pipeline, notebook, tests, Makefile, CI, Dockerfile
    ```

    Args:
        name: The project's name: a letter, then letters, digits, '-' or '_'.
        path: The folder to create (default: `./<name>`); it must not exist or be empty.
        template: `default` (kiln's), or the path of a Copier template folder with a VERSION.
        git: Make the folder a git repository with a first commit (needed later by
            `update`, whose merge works on git).
        answers: Answers to the template's questions (such as `description`).
        kiln_wheel: A kiln-ml wheel (or a folder with one) for the project to install
            kiln from (default: found or built, see `kiln._wheel`).
        lock: Write `uv.lock` with `uv lock` (which asks the package index). Skipped
            when uv is missing or the index cannot be reached; `make setup` writes it then.

    Returns:
        The project's root folder.

    Raises:
        ConfigurationError: A bad name, a non-empty folder, no git, or a bad template.
        MissingExtraError: Copier is not installed (`pip install 'kiln-ml[init]'`).
    """
    package = package_name(name)
    root = Path(path if path is not None else Path.cwd() / name).expanduser().resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigurationError(
            f"{root} already exists and is not empty; kiln init creates a new project. Pick "
            "another name or path, or run `kiln init --update` inside an existing kiln project."
        )
    copier = _copier("kiln init")
    folder, version = resolve_template(template)
    if git and not has_git():
        raise ConfigurationError(
            "kiln init makes the project a git repository, but no `git` is on PATH. Install "
            "git, or pass --no-git (the project then cannot take template updates)."
        )
    existed = root.is_dir()
    root.mkdir(parents=True, exist_ok=True)
    from copier.errors import CopierError
    from jinja2 import TemplateError

    try:
        data: dict[str, Any] = {"project_name": name, "package_name": package}
        data.update(answers or {})
        wheel, wheel_answers = _wheel_answers(kiln_wheel)
        data.update(wheel_answers)
        _put_wheel(root, wheel)
        settings = {"defaults": True, "quiet": True, "overwrite": True, "unsafe": False}
        if git:
            _git_init(root)
            store_template(root, folder, version)
            with _cwd(root):
                copier.run_copy(TEMPLATE_REPO, ".", data=data, vcs_ref=version, **settings)
            if lock:
                _lock(root)
            commit_all(root, f"Create {name} from kiln's project template {version}")
        else:
            copier.run_copy(str(folder), root, data=data, **settings)
            if lock:
                _lock(root)
    except (CopierError, TemplateError) as exc:
        _remove(root, existed)
        line = getattr(exc, "lineno", None)
        where = f" in {getattr(exc, 'name', '?')}, line {line}" if line else ""
        raise ConfigurationError(
            f"The template {folder} could not be rendered{where}: {type(exc).__name__}: {str(exc).rstrip('.')}."
            " Fix the template (Copier's copier.yml and Jinja files) and run kiln init again."
        ) from exc
    except BaseException:
        _remove(root, existed)
        raise
    return root


def _remove(root: Path, existed: bool) -> None:
    """Undo a failed init: the folder it made, or what it wrote into an empty one."""
    if not existed:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _lock(root: Path) -> bool:
    """`uv lock` in the project; False (and no uv.lock) when uv or the index is missing."""
    import subprocess

    uv = uv_executable()
    if uv is None:
        return False
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    try:
        done = subprocess.run(
            [uv, "lock", "--quiet"], cwd=root, env=env, capture_output=True, timeout=180
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and (root / "uv.lock").is_file()


def _git_init(root: Path) -> None:
    git("init", "--quiet", cwd=root)
    git("symbolic-ref", "HEAD", "refs/heads/main", cwd=root)


def _read_answers(root: Path) -> dict[str, Any]:
    import yaml

    path = root / ANSWERS_FILE
    if not path.is_file():
        raise ConfigurationError(
            f"{root} has no {ANSWERS_FILE}, so it was not made by `kiln init` (or the file "
            "was deleted); `kiln init --update` needs it to know the template and version "
            "the project came from. Run it in the root of a project made by `kiln init`."
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must be a YAML mapping of answers.")
    return data


def _paths(output: str) -> list[str]:
    out = []
    for line in output.splitlines():
        if len(line) > 3:
            name = line[3:]
            out.append(name.split(" -> ")[-1].strip('"'))
    return sorted(set(out))


def update(
    path: str | os.PathLike[str] = ".",
    *,
    template: str | os.PathLike[str] = "default",
    kiln_wheel: str | os.PathLike[str] | None = None,
) -> UpdateResult:
    """Merge a newer template version (or a newer kiln's wheel) into a `kiln init` project.

    Copier renders the template at the project's version and at the new one and applies
    the difference to the project three-way: lines only the template changed are
    updated, the project's own edits are kept, and lines both changed are left with
    conflict markers and listed in the result. Nothing is committed: review with
    `git diff`, resolve conflicts, then commit. At the same template version it still
    re-renders when the running kiln's version or wheel differs from the answers file's,
    which moves the project's kiln-ml pin and `wheels/` to it.

    Args:
        path: The project root (holding `.copier-answers.yml`), a clean git work tree.
        template: `default`, or the folder of the template the project was made from.
        kiln_wheel: A kiln-ml wheel for the project's `wheels/` (default: found or built).

    Returns:
        The versions, the changed files and the files with conflicts.

    Raises:
        ConfigurationError: No answers file, not a clean git repository, a downgrade, or
            the project's template history is missing.
        MissingExtraError: Copier is not installed (`pip install 'kiln-ml[init]'`).
    """
    root = Path(path).expanduser().resolve()
    answers = _read_answers(root)
    copier = _copier("kiln init --update")
    from packaging.version import Version

    folder, version = resolve_template(template)
    old = str(answers.get("_commit") or "")
    if not (root / ".git").is_dir() or not old:
        raise ConfigurationError(
            f"{root} is not a git repository made by `kiln init` (no .git folder, or no "
            f"_commit in {ANSWERS_FILE}: made with --no-git?). The update's three-way merge "
            "works on git: recreate the project with `kiln init` and copy your code over."
        )
    if not git("tag", "--list", old, cwd=root / TEMPLATE_REPO, check=False).strip():
        raise ConfigurationError(
            f"The template version {old} this project was made from is not in "
            f"{TEMPLATE_REPO} (a fresh clone does not carry it). Run the update in the "
            "checkout where `kiln init` made the project."
        )
    if Version(version) < Version(old):
        raise ConfigurationError(
            f"The project is at template version {old}, newer than this kiln's {version}; "
            "upgrade kiln (downgrades are not supported)."
        )
    wheel, data = _wheel_answers(kiln_wheel)
    if Version(version) == Version(old) and all(answers.get(k) == v for k, v in data.items()):
        return UpdateResult(root, old, version)
    if git("status", "--porcelain", cwd=root).strip():
        raise ConfigurationError(
            f"{root} has uncommitted changes; `kiln init --update` merges into a clean work "
            "tree so that `git diff` shows exactly what it did. Commit or stash them first."
        )
    store_template(root, folder, version)
    from copier.errors import CopierError

    try:
        with _cwd(root):
            copier.run_update(
                ".",
                data=data,
                vcs_ref=version,
                defaults=True,
                overwrite=True,
                quiet=True,
                conflict="inline",
                skip_answered=True,
            )
    except CopierError as exc:
        raise ConfigurationError(f"The template update failed: {exc}") from exc
    _put_wheel(root, wheel, str(answers.get("kiln_wheel") or ""))
    status = git("status", "--porcelain", "--untracked-files=all", cwd=root)
    changed = _paths(status)
    unmerged = git("diff", "--name-only", "--diff-filter=U", cwd=root).split()
    marked = [name for name in changed if (root / name).is_file() and _has_markers(root / name)]
    return UpdateResult(root, old, version, changed, sorted(set(unmerged) | set(marked)))


def _has_markers(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return False
    return bool(re.search(r"^<{7}( |$)", text, re.M) and re.search(r"^>{7}( |$)", text, re.M))
