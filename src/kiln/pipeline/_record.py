"""What a pipeline run reads and leaves behind: its params, cache keys and state file.

Shared by `Pipeline` and the scheduler that runs it (apart from both, so that neither
imports the other for it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kiln.pipeline._hash import digest, is_project_file, value_digest
from kiln.pipeline._project import PARAMS_FILE, apply_overrides, load_params
from kiln.pipeline._result import PipelineResult
from kiln.pipeline._state import file_records, fingerprint, read_state, write_state

__all__ = ["load_project_params", "project_sources", "save_state", "step_key"]


def project_sources() -> list[str]:
    """The project's source files loaded in this process (for the no-op check)."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and is_project_file(path):
            files.add(os.path.abspath(path))
    return sorted(files)


def save_state(
    root: Path,
    *,
    target: str | None,
    overrides: Mapping[str, Any],
    result: PipelineResult,
    complete: bool,
    input_files: Iterable[str],
    store: str | None,
    record: Mapping[str, Any] | None = None,
) -> None:
    """Record the run for the no-op check, `kiln pipeline show` and `kiln lineage`.

    `record` is what a run of the pipeline records besides its steps (experiment, name,
    tags, params as text): a no-op `kiln run` replays it (see `_noop`)."""
    previous = (read_state(root) or {}).get("steps", {})
    steps = dict(previous)
    for name, o in result.steps.items():
        if o.status in ("not run",):
            continue
        steps[name] = {
            "status": o.status,
            "reason": o.reason,
            "key": o.key,
            "run_id": o.run_id,
            "output": o.output,
            "error": (o.error or "")[-4000:] or None,
            "start": o.start,
            "end": o.end,
            "code_hash": o.code_hash,
            "params": o.params,
            "inputs": o.inputs,
            "files": o.files,
        }
    files = [
        *project_sources(),
        str(root / PARAMS_FILE),
        str(root / "pyproject.toml"),
        *input_files,
    ]
    write_state(
        root,
        {
            "target": target,
            "run_id": result.run_id,
            "complete": complete,
            "finished_at": time.time(),
            "fingerprint": fingerprint(target or "<python>", overrides, store),
            "files": file_records(files),
            "steps": steps,
            "order": list(result.steps),
            "record": dict(record) if record is not None else None,
        },
    )


def load_project_params(root: Path, params: Mapping[str, Any] | None, overrides: Any) -> Any:
    """The params to run with: given or the project's (in `root`), with overrides applied."""
    base = load_params(root) if params is None else dict(params)
    return apply_overrides(base, dict(overrides or {}))


def step_key(
    name: str,
    code: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    files: Mapping[str, str],
) -> str:
    """A step's cache key: its name, code hash, params read, inputs' and files' hashes."""
    return digest(
        "kiln-step-v1",
        name,
        code,
        value_digest(dict(params)),
        json.dumps(dict(inputs), sort_keys=True),
        json.dumps(dict(files), sort_keys=True),
    )
