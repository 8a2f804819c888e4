"""Re-create a past pipeline run from its recorded commit, diff and params; compare metrics.

The recorded commit is checked out into a scratch `git worktree` (the working copy is
left alone), the recorded uncommitted diff is applied, and the pipeline is run there
with the recorded overrides and no cache, into the same store, with the current Python
environment: packages whose version differs from the recorded set are listed. The metrics of every
step's run are then set side by side with the original's.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from kiln._exceptions import PipelineError

__all__ = ["reproduce"]

_TAG = "kiln.pipeline"


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


def reproduce(run_id: str, *, client: Any = None, repo: str | None = None) -> dict[str, Any]:
    """Re-run a recorded pipeline run at its commit and compare its steps' metrics.

    Args:
        run_id: The pipeline run (an id, a unique prefix).
        client: The TrackingClient of the store holding the run (default: the configured one).
        repo: The git repository (default: the recorded project folder, else the working one).

    Returns:
        `{"original", "reproduced", "commit", "metrics": [{step, key, original,
        reproduced, same}], "identical"}`.

    Raises:
        PipelineError: The run is not a pipeline run, has no recorded commit, or the
            re-run failed (its output is included).
    """
    if client is None:
        import kiln

        client = kiln.get_client()
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
        args = [sys.executable, "-c", "from kiln.cli import main; main()"]
        args += ["--store", client.store.url, "run", target, "--no-cache", "--json"]
        args += ["-e", run.experiment]
        for key, value in overrides.items():
            args += ["-p", f"{key}={json.dumps(value)}"]
        env = {k: v for k, v in os.environ.items() if k not in ("KILN_STORE",)}
        done = subprocess.run(
            args, cwd=project, env=env, capture_output=True, text=True, timeout=3600, check=False
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
        "packages_changed": _package_changes(run.environment.get("packages")),
    }


def _package_changes(recorded: str | dict[str, str] | None) -> list[str]:
    """Packages whose installed version differs from the one recorded with the run.

    The re-run uses the current environment (not a fresh one with the recorded set), so
    these are the differences to suspect when metrics differ.
    """
    if not recorded:
        return []
    from kiln.tracking._env import _packages, canonical_name

    then = json.loads(recorded) if isinstance(recorded, str) else dict(recorded)
    then = {canonical_name(k): v for k, v in then.items()}  # older runs kept METADATA spellings
    now = json.loads(_packages())
    return [
        f"{name} {then.get(name, '-')} -> {now.get(name, '-')}"
        for name in sorted(set(then) | set(now))
        if then.get(name) != now.get(name)
    ]
