"""kiln-ml's own wheel (for a new project, a model package), while kiln-ml is not on a public package index.

Found, in order: the file or folder the caller gave; the wheel file kiln was installed
from; `dist/` of kiln's source tree (where `make dist` puts it) unless a file under `src/`
or `pyproject.toml` changed since it was built; else built there with
`uv build --wheel --out-dir dist` (what `make dist` runs). None when kiln was installed
from a package index: the project then asks the index for kiln-ml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from kiln._exceptions import ConfigurationError
from kiln._version import __version__

__all__ = ["find_kiln_wheel", "installed_wheel", "source_tree", "uv_executable"]


def _pattern() -> str:
    return f"kiln_ml-{__version__}-*.whl"


def _direct_url() -> dict[str, object]:
    try:
        text = metadata.distribution("kiln-ml").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return {}
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _local(url: object) -> Path | None:
    text = str(url or "")
    return Path(unquote(urlparse(text).path)) if text.startswith("file:") else None


def source_tree() -> Path | None:
    """The folder kiln-ml was installed from (editable or local source), if any."""
    info = _direct_url()
    candidates = []
    folder = _local(info.get("url")) if "dir_info" in info else None
    if folder is not None:
        candidates.append(folder)
    candidates.append(Path(__file__).resolve().parents[2])  # src/kiln/_wheel.py -> root
    for root in candidates:
        project = root / "pyproject.toml"
        if project.is_file() and re.search(
            r'^name\s*=\s*"kiln-ml"', project.read_text(encoding="utf-8"), re.M
        ):
            return root
    return None


def installed_wheel() -> Path | None:
    """The local kiln-ml wheel file kiln was installed from, if it is still there."""
    info = _direct_url()
    path = _local(info.get("url")) if "archive_info" in info else None
    return path if path is not None and path.suffix == ".whl" and path.is_file() else None


def uv_executable() -> str | None:
    """uv on PATH, else beside the running Python (the `reproduce` extra), else None."""
    found = shutil.which("uv")
    beside = Path(sys.executable).parent / "uv"
    return found or (str(beside) if beside.exists() else None)


def _stale(wheel: Path, root: Path) -> bool:
    """True when a file the wheel is built from is newer than the wheel (an old `make dist`)."""
    built = wheel.stat().st_mtime
    sources = [root / "pyproject.toml", *(root / "src").rglob("*")]
    return any(
        "__pycache__" not in path.parts and path.is_file() and path.stat().st_mtime > built
        for path in sources
    )


def find_kiln_wheel(given: str | os.PathLike[str] | None = None) -> Path | None:
    """The kiln-ml wheel of the running version (see the module docs), or None.

    Raises:
        ConfigurationError: `given` is not such a wheel, or building it failed.
    """
    pattern = _pattern()
    if given is not None:
        path = Path(given)
        found = sorted(path.glob(pattern)) if path.is_dir() else [path]
        if not found or not found[0].is_file() or not found[0].match(pattern):
            raise ConfigurationError(
                f"kiln_wheel {str(path)!r} is not a kiln-ml {__version__} wheel (or a folder "
                f"holding one): expected a file named {pattern}. Build it with `make dist` "
                "in a clone of kiln at that version."
            )
        return found[0]
    wheel = installed_wheel()
    if wheel is not None and wheel.match(pattern):
        return wheel
    root = source_tree()
    if root is None:
        return None
    built = sorted((root / "dist").glob(pattern))
    if built and not _stale(built[-1], root):
        return built[-1]
    uv = uv_executable()
    dist = root / "dist"
    command = (
        [uv, "build", "--wheel", "--out-dir", str(dist), str(root)]
        if uv
        else [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(root)]
    )
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigurationError(
            f"Could not build kiln-ml's wheel in {root} ({exc}). Run `make dist` there and "
            "pass the wheel with --kiln-wheel."
        ) from exc
    built = sorted(dist.glob(pattern))
    if done.returncode != 0 or not built:
        raise ConfigurationError(
            f"Could not build kiln-ml's wheel in {root}: {' '.join(command[:2])} said "
            f"{(done.stderr or done.stdout).strip()[-800:]!r}. Run `make dist` there and "
            "pass the wheel with --kiln-wheel."
        )
    return built[-1]
