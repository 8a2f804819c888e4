"""Re-create a past pipeline run from its recorded commit, diff and params; compare metrics.

The recorded commit is checked out into a scratch `git worktree` (the working copy is
left alone), the recorded uncommitted diff is applied, and the pipeline is run there
with the recorded overrides and no cache, into the same store. The metrics of every
step's run are then set side by side with the original's.

Where it runs (`env`): "fresh" (the default) builds a new virtual env with uv holding the
project's declared dependencies (`[project] dependencies` or requirements.txt at that
commit) and kiln's own (its base, plus the optional dependencies the run's steps imported,
recorded in their `kiln.imports` tags: scikit-learn, skops, plotly, ...), every one pinned
to the version the run recorded (the recorded set is the constraints file; uv's cache is
tried first, then the index), with kiln itself taken from the running installation. A project that declares no dependencies, or a run
that recorded no package list, runs in the current env, as does `env="current"`; then
packages whose version differs from the recorded set are listed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from kiln._exceptions import PipelineError

__all__ = ["imported_optional_dependencies", "reproduce"]

_TAG = "kiln.pipeline"
IMPORTS_TAG = "kiln.imports"
_KILN_PACKAGE = Path(__file__).resolve().parents[1]  # the `kiln` folder this runs from
# Distributions whose import name is not their name with '-' as '_'.
_MODULE_OF = {"scikit-learn": "sklearn", "xgboost-cpu": "xgboost", "pyyaml": "yaml"}


def _git(args: list[str], cwd: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def _timing(key: str) -> bool:
    """Timings and system metrics differ between any two runs: they are not compared."""
    return key.startswith((_TAG, "system/")) or key.endswith("seconds")


def step_metrics(client: Any, run_id: str) -> dict[str, dict[str, float]]:
    """Step name -> the metrics its child run logged (timings left out)."""
    out: dict[str, dict[str, float]] = {}
    for child in client.search_runs(filter=f"parent_id = '{run_id}'"):
        step = child.tags.get(f"{_TAG}.step")
        if step:
            out[step] = {k: v for k, v in child.metrics.items() if not _timing(k)}
    return out


@functools.lru_cache(maxsize=1)
def _optional_requirements() -> dict[str, str]:
    """kiln-ml's optional dependencies (every extra but dev): canonical name -> requirement."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        lines = requires("kiln-ml") or []
    except PackageNotFoundError:  # kiln from a source tree (a reproduce env's .pth)
        lines = _requirements_from_source()
    out: dict[str, str] = {}
    for line in lines:
        spec, _, marker = line.partition(";")
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if extra is None or extra[1] == "dev":
            continue
        name = re.match(r"[A-Za-z0-9._-]+", spec.strip())
        if name is not None and not name[0].startswith("kiln"):
            out.setdefault(re.sub(r"[-_.]+", "-", name[0]).lower(), spec.strip())
    return out


def _requirements_from_source() -> list[str]:
    """kiln-ml's extras as metadata lines, read from the source tree's pyproject.toml."""
    import tomllib

    pyproject = _KILN_PACKAGE.parents[1] / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    extras = data.get("project", {}).get("optional-dependencies", {})
    return [f'{spec}; extra == "{extra}"' for extra, specs in extras.items() for spec in specs]


def imported_optional_dependencies() -> list[str]:
    """kiln's optional dependencies this process imported (plotly, skops, sklearn, ...).

    Recorded on every pipeline step's run (tag `kiln.imports`), so that `kiln runs
    reproduce` installs kiln with what the run used, not only its lean base.
    """
    modules = set(sys.modules)
    return sorted(
        name
        for name in _optional_requirements()
        if _MODULE_OF.get(name, name.replace("-", "_")) in modules
    )


def _uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
    except ImportError as exc:
        raise PipelineError(
            "Re-creating the recorded packages needs uv: pip install 'kiln-ml[reproduce]' "
            "(or put uv on PATH), or re-run in the current env with --env current."
        ) from exc
    return str(find_uv_bin())


def _declared_dependencies(project: Path) -> list[str]:
    """The project's dependencies as declared at the checked-out commit."""
    import tomllib

    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        deps = data.get("project", {}).get("dependencies") or []
        if deps:
            return [str(d) for d in deps]
    requirements = project / "requirements.txt"
    if requirements.is_file():
        lines = requirements.read_text(encoding="utf-8").splitlines()
        return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", "-"))]
    return []


def _fresh_env(
    scratch: Path, project: Path, recorded: dict[str, str], imports: set[str]
) -> tuple[str, dict[str, str]]:
    """A new venv with the declared and kiln's dependencies at their recorded versions.

    Returns its Python and its packages ({canonical name: version}).
    """
    from importlib.metadata import requires

    uv = _uv()
    venv = scratch / "venv"
    made = subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if made.returncode != 0:
        raise PipelineError(f"uv could not create a virtual env: {made.stderr.strip()}")
    python = str(venv / "bin" / "python")
    constraints = scratch / "recorded-packages.txt"
    constraints.write_text(
        "".join(f"{name}=={version}\n" for name, version in sorted(recorded.items())
                if name != "kiln-ml"),
        encoding="utf-8",
    )  # fmt: skip
    # kiln's base dependencies, and the optional ones the run imported (its extras).
    wanted = _declared_dependencies(project) + [
        r for r in requires("kiln-ml") or [] if ";" not in r
    ]
    optional = _optional_requirements()
    wanted += [
        optional[name]
        for name in sorted(imports)
        # a local build (torch 2.13.0+cpu) is on no index: the re-run says what is missing
        if name in optional and "+" not in recorded.get(name, "")
    ]
    base = [uv, "pip", "install", "--quiet", "--python", python, "--constraint", str(constraints)]
    errors = ""
    for extra in (["--offline"], []):  # uv's cache first (no network), then the index
        done = subprocess.run(
            [*base, *extra, *wanted], capture_output=True, text=True, timeout=1800, check=False
        )
        if done.returncode == 0:
            break
        errors = done.stderr.strip()
    else:
        raise PipelineError(
            "The packages recorded with the run cannot be installed in a fresh env:\n"
            f"{errors}\nRe-run in the current env with --env current."
        )
    # kiln itself comes from the running installation (the run's own kiln may not be on
    # an index); its dependencies were installed above, at their recorded versions.
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    source = _KILN_PACKAGE.parent
    (Path(purelib) / "_kiln_reproduce.pth").write_text(f"{source}\n", encoding="utf-8")
    listed = subprocess.run(
        [python, "-c", "import json, kiln.tracking as t; print(json.dumps(t.installed_packages()))"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return python, json.loads(listed.stdout) if listed.returncode == 0 else {}


def reproduce(
    run_id: str, *, client: Any = None, repo: str | None = None, env: str = "fresh"
) -> dict[str, Any]:
    """Re-run a recorded pipeline run at its commit and compare its steps' metrics.

    Args:
        run_id: The pipeline run (an id, a unique prefix).
        client: The TrackingClient of the store holding the run (default: the configured one).
        repo: The git repository (default: the recorded project folder, else the working one).
        env: "fresh" (a new venv with the recorded versions, see above) or "current".

    Returns:
        `{"original", "reproduced", "commit", "metrics": [{step, key, original,
        reproduced, same}], "identical", "env", "packages_changed"}`.

    Raises:
        PipelineError: The run is not a pipeline run, has no recorded commit, or the
            re-run failed (its output is included).
    """
    if env not in ("fresh", "current"):
        raise PipelineError(f"env must be 'fresh' or 'current'; got {env!r}.")
    if client is None:
        from kiln.tracking import get_client

        client = get_client()
    run = client.get_run(client.resolve_run_id(run_id))
    target = run.tags.get(f"{_TAG}.target")
    if not target:
        raise PipelineError(
            f"Run {run.id} is not a pipeline run started by `kiln run` (it has no "
            f"{_TAG}.target tag); only those can be reproduced."
        )
    commit = run.environment.get("git_commit")
    if not commit:
        raise PipelineError(
            f"Run {run.id} recorded no git commit (it ran outside a git repository), so it "
            "cannot be re-created."
        )
    recorded_root = run.tags.get(f"{_TAG}.root") or ""
    where = repo or (recorded_root if os.path.isdir(recorded_root) else os.getcwd())
    top = _git(["rev-parse", "--show-toplevel"], where)
    if top.returncode != 0:
        raise PipelineError(f"{where} is not in a git repository: {top.stderr.strip()}")
    scratch = Path(tempfile.mkdtemp(prefix="kiln-reproduce-"))
    tree = scratch / "tree"
    added = _git(["worktree", "add", "--detach", str(tree), commit], top.stdout.strip())
    if added.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise PipelineError(
            f"Cannot check out commit {commit[:12]} of run {run.id}: {added.stderr.strip()}"
        )
    try:
        diff = run.environment.get("git_diff")
        if diff:
            patch = scratch / "recorded.diff"
            patch.write_text(diff, encoding="utf-8")
            applied = _git(["apply", "--whitespace=nowarn", str(patch)], tree)
            if applied.returncode != 0:
                raise PipelineError(
                    f"The uncommitted diff recorded with run {run.id} does not apply to "
                    f"{commit[:12]}: {applied.stderr.strip()}"
                )
        project = tree / (run.tags.get(f"{_TAG}.subdir") or "")
        overrides = json.loads(run.tags.get(f"{_TAG}.overrides") or "{}")
        recorded = run.environment.get("packages")
        recorded = json.loads(recorded) if isinstance(recorded, str) else recorded
        python, used = sys.executable, "current"
        installed: dict[str, str] | None = None
        if env == "fresh" and recorded and _declared_dependencies(project):
            imports = set(filter(None, run.tags.get(IMPORTS_TAG, "").split(",")))
            for child in client.search_runs(filter=f"parent_id = '{run.id}'"):
                imports |= set(filter(None, child.tags.get(IMPORTS_TAG, "").split(",")))
            python, installed = _fresh_env(scratch, project, dict(recorded), imports)
            used = "fresh"
        args = [python, "-c", "from kiln.cli import main; main()"]
        args += ["--store", client.store.url, "run", target, "--no-cache", "--json"]
        args += ["-e", run.experiment]
        for key, value in overrides.items():
            args += ["-p", f"{key}={json.dumps(value)}"]
        child_env = {k: v for k, v in os.environ.items() if k not in ("KILN_STORE",)}
        done = subprocess.run(
            args,
            cwd=project,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if done.returncode != 0:
            raise PipelineError(
                f"Re-running {target} at {commit[:12]} failed (exit {done.returncode}):\n"
                f"{done.stderr.strip() or done.stdout.strip()}"
            )
        new_id = json.loads(done.stdout)["run_id"]
    finally:
        _git(["worktree", "remove", "--force", str(tree)], top.stdout.strip())
        shutil.rmtree(scratch, ignore_errors=True)
    before, after = step_metrics(client, run.id), step_metrics(client, new_id)
    rows = []
    for step in sorted(set(before) | set(after)):
        for key in sorted(set(before.get(step, {})) | set(after.get(step, {}))):
            a, b = before.get(step, {}).get(key), after.get(step, {}).get(key)
            same = a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=0)
            rows.append({"step": step, "key": key, "original": a, "reproduced": b, "same": same})
    return {
        "original": run.id,
        "reproduced": new_id,
        "commit": commit,
        "metrics": rows,
        "identical": all(r["same"] for r in rows),
        "env": used,
        "packages_changed": _package_changes(recorded, installed),
    }


def _package_changes(
    recorded: dict[str, str] | None, installed: dict[str, str] | None = None
) -> list[str]:
    """Packages whose version where the re-run ran differs from the one recorded.

    `installed` is a fresh env's set, which holds only what the project needs: only its
    packages are compared. Without it, the current env's whole set is (the differences
    to suspect when metrics differ).
    """
    if not recorded:
        return []
    from kiln.tracking import canonical_name, installed_packages

    then = {canonical_name(k): v for k, v in recorded.items()}  # older runs: METADATA names
    now = installed if installed is not None else installed_packages()
    names = set(now) & set(then) if installed is not None else set(then) | set(now)
    return [
        f"{name} {then.get(name, '-')} -> {now.get(name, '-')}"
        for name in sorted(names)
        if then.get(name) != now.get(name)
    ]
