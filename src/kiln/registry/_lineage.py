"""What a version is made from: its source URI, its run, and a lineage snapshot.

A saved model is a folder holding `kiln-model.json`. The registry never loads a model:
it reads that one file (for the flavor) and records the sha256 of every file in the
folder, so that a loader can tell whether the files are still the ones registered.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError, did_you_mean
from kiln.registry._errors import RegistryError
from kiln.registry._names import MODEL_MANIFEST, MODELS_PREFIX, RUNS_PREFIX, parse_runs_uri
from kiln.tracking import computed_by

if TYPE_CHECKING:
    from kiln.tracking import Run, TrackingClient

__all__ = ["MODEL_FILE", "RUN_MODEL_PATH", "Origin", "find_origin"]

MODEL_FILE = MODEL_MANIFEST
RUN_MODEL_PATH = "model"  # where a run's model is when only the run is given
_HEX = re.compile(r"[0-9a-fA-F]{4,32}\Z")
_PIPELINE = "kiln.pipeline"  # the tags of a pipeline step's run (kiln.pipeline's step_tags)

# (source URI, run id or None, lineage)
Origin = tuple[str, str | None, dict[str, Any]]


def find_origin(client: TrackingClient, model: Any) -> Origin:
    """Work out what `register` was given: a runs:/ URI, a local folder, a run id or a run.

    Raises:
        RegistryError: `model` is none of those, or holds no saved model.
        RunNotFoundError: The run does not exist.
    """
    if not isinstance(model, (str, os.PathLike)):
        run_id = getattr(model, "id", None)
        if isinstance(run_id, str):
            return _from_run(client, run_id, RUN_MODEL_PATH)
        raise RegistryError(
            f"Cannot register a {type(model).__name__}: expected a model URI "
            "(runs:/<run id>/model), a local folder holding kiln-model.json, a run id, or "
            "a run (as returned by kiln.start_run). Save the model first, then register it."
        )
    text = os.fspath(model)
    if text.startswith(RUNS_PREFIX):
        try:
            run_id, artifact_path = parse_runs_uri(text)
        except ConfigurationError as exc:  # register's contract: RegistryError
            raise RegistryError(str(exc)) from exc
        return _from_run(client, run_id, artifact_path)
    if text.startswith(MODELS_PREFIX):
        raise RegistryError(f"{text!r} is already registered; resolve it with resolve_uri.")
    if "://" in text:
        raise RegistryError(
            f"Cannot register {text!r}: kiln registers runs:/<run id>/<path> URIs, local "
            "folders and run ids. Log the model to a run (its files go to the artifact "
            "store), then register runs:/<run id>/model."
        )
    path = Path(text).expanduser()
    if path.exists():
        return _from_folder(path)
    if _HEX.match(text) or text.strip().lower() == "latest":
        return _from_run(client, text, RUN_MODEL_PATH)
    raise RegistryError(
        f"Cannot register {text!r}: there is no such folder (working directory: "
        f"{os.getcwd()}), and it is not a run id or a runs:/<run id>/<path> URI."
    )


def _from_folder(path: Path) -> Origin:
    folder = path.resolve()
    if folder.is_file():
        hint = f" Give its folder: {folder.parent}" if folder.name == MODEL_FILE else ""
        raise RegistryError(f"{str(folder)!r} is a file; a saved model is a folder.{hint}")
    meta_file = folder / MODEL_FILE
    if not meta_file.is_file():
        inside = sorted(p.name for p in folder.iterdir())[:10]
        have = f" It has: {', '.join(inside)}." if inside else " It is empty."
        raise RegistryError(
            f"{str(folder)!r} is not a saved kiln model: it has no {MODEL_FILE}.{have}"
        )
    from kiln.artifacts import hash_folder

    files = hash_folder(folder)
    lineage = {
        "run_id": None,
        "flavor": _flavor(meta_file.read_bytes()),
        "model_path": str(folder),
        "model_files": files,
    }
    return str(folder), None, lineage


def _from_run(client: TrackingClient, run_id: str, path: str) -> Origin:
    run = client.get_run(client.resolve_run_id(run_id))
    prefix = path + "/"
    files = {a.path[len(prefix) :]: a.sha256 for a in run.artifacts if a.path.startswith(prefix)}
    if MODEL_FILE not in files:
        maker = computed_by(client, run, f"{path}/{MODEL_FILE}")
        if maker is None:
            hint = (
                f" It is a pipeline step that reused a cached output, and no run of step "
                f"{run.tags.get(_PIPELINE + '.step')!r} that computed it holds the model any "
                "more: re-run the step (kiln run --force STEP) and register its run."
                if run.tags.get(_PIPELINE + ".cache") == "hit"
                else ""
            )
            raise RegistryError(_no_model_message(run, path) + hint)
        run = maker
        files = {
            a.path[len(prefix) :]: a.sha256 for a in run.artifacts if a.path.startswith(prefix)
        }
    lineage = run_lineage(run)
    lineage.update(
        flavor=_flavor(client.read_artifact(run.id, prefix + MODEL_FILE)),
        model_path=path,
        model_files=dict(sorted(files.items())),
    )
    return f"{RUNS_PREFIX}{run.id}/{path}", run.id, lineage


def run_lineage(run: Run) -> dict[str, Any]:
    """The parts of a run a model version keeps: what it was trained on, and how."""
    env = run.environment
    return {
        "run_id": run.id,
        "run_name": run.name,
        "experiment": run.experiment,
        "run_status": run.status,
        "params": dict(run.params),
        "metrics": dict(run.metrics),
        "datasets": [
            {
                "fingerprint": d.fingerprint,
                "name": d.name,
                "role": d.role,
                "direction": d.direction,
                "shape": [d.n_rows, d.n_cols],
            }
            for d in run.datasets
        ],
        "git_commit": env.get("git_commit"),
        "git_branch": env.get("git_branch"),
        "git_dirty": env.get("git_dirty"),
    }


def _no_model_message(run: Run, path: str) -> str:
    models = sorted(
        a.path[: -len(MODEL_FILE) - 1] for a in run.artifacts if a.path.endswith("/" + MODEL_FILE)
    )
    head = (
        f"Run {run.id[:12]} ({run.name!r}) has no saved model at {path!r}: there is no "
        f"artifact {path + '/' + MODEL_FILE!r}."
    )
    if models:
        uris = ", ".join(f"{RUNS_PREFIX}{run.id}/{m}" for m in models[:5])
        return f"{head}{did_you_mean(path, models)} Its saved models: {uris}."
    names = [a.path for a in run.artifacts]
    listing = (
        f" Its artifacts: {', '.join(names[:10])}{', ...' if len(names) > 10 else ''}."
        if names
        else " It has no artifacts."
    )
    return (
        f"{head}{listing} Log a saved model folder (it holds {MODEL_FILE}) to the run as "
        f"{path!r}, then register it."
    )


def _flavor(raw: bytes) -> str | None:
    """The flavor a `kiln-model.json` names (`"flavor": "sklearn"` or `{"name": ...}`)."""
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    flavor = meta.get("flavor") if isinstance(meta, dict) else None
    if isinstance(flavor, dict):
        flavor = flavor.get("name")
    return flavor if isinstance(flavor, str) else None
