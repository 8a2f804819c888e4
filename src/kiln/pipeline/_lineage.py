"""Where an output came from: its step, code version, params, input files and inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln._exceptions import NotFoundError, did_you_mean
from kiln.pipeline._state import read_state

__all__ = ["lineage"]


def lineage(root: str | Path, output: str) -> dict[str, Any]:
    """The lineage of a step's output as of the project's last run, as a tree.

    Args:
        root: The project folder.
        output: A step name, or the start of an output's sha256.

    Returns:
        `{"step", "status", "output", "code_hash", "params", "files", "key", "run_id",
        "inputs": [<the same for each input>]}`.

    Raises:
        NotFoundError: No step or output matches.
    """
    state = read_state(Path(root))
    if state is None:
        raise NotFoundError(
            f"No pipeline has run in {root} yet, so there is no lineage; run `kiln run` first."
        )
    steps: dict[str, Any] = state.get("steps", {})
    name = output
    if name not in steps:
        by_sha = (
            [
                n
                for n, rec in steps.items()
                if str((rec.get("output") or {}).get("sha", "")).startswith(output)
            ]
            if len(output) >= 6
            else []
        )
        if len(by_sha) != 1:
            raise NotFoundError(
                f"No step or output {output!r} in the last run of {root}."
                f"{did_you_mean(output, steps)} Known outputs: {', '.join(steps)}."
            )
        name = by_sha[0]
    return _node(steps, name, set())


def _node(steps: dict[str, Any], name: str, seen: set[str]) -> dict[str, Any]:
    rec = steps[name]
    node = {
        "step": name,
        "status": rec.get("status"),
        "output": rec.get("output"),
        "code_hash": rec.get("code_hash"),
        "params": rec.get("params") or {},
        "files": dict(rec.get("files") or {}),
        "key": rec.get("key"),
        "run_id": rec.get("run_id"),
        "inputs": [],
    }
    for dep, sha in sorted((rec.get("inputs") or {}).items()):
        if dep in steps and dep not in seen:
            child = _node(steps, dep, seen | {name})
            child["sha_read"] = sha
            node["inputs"].append(child)
    return node
