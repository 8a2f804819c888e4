"""Running one step: the same function in this process, a pool worker or a Ray task.

A task is plain data (so it pickles anywhere): the step's import reference, its
arguments (param values, stored-output descriptors or input-file paths), the store
and the parent run. The step runs inside a child run of the pipeline run, which
records its timing, params, cache key, output hash and, on failure, the traceback.
"""

from __future__ import annotations

import importlib
import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.pipeline._graph import add_to_path

__all__ = ["execute_step", "user_traceback"]

_KILN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def user_traceback(exc: BaseException) -> str:
    """The traceback of the user's code: frames inside kiln are left out."""
    te = traceback.TracebackException.from_exception(exc)
    stack = [f for f in te.stack if not os.path.abspath(f.filename).startswith(_KILN_DIR)]
    te.stack = traceback.StackSummary.from_list(stack)
    return "".join(te.format())


def _save_model_on_run(model: Any, run: Any) -> None:
    """A step that returns a `kiln.Model` gets it saved on its run, as `model/`, so that
    `kiln models register <step run> NAME` works (unless the step saved it there itself)."""
    import tempfile

    uri = f"runs:/{run.id}/model"
    if uri in model.__dict__.get("_saved_uris_", ()):
        return
    with tempfile.TemporaryDirectory(prefix="kiln-step-model-") as tmp:
        folder = model.save(Path(tmp) / "model")
        run.log_artifact(folder, name="model")


def import_ref(module: str, qualname: str, root: str | None) -> Callable[..., Any]:
    """Import a function by module and qualified name (with the project on sys.path)."""
    if root:
        add_to_path(Path(root))
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def execute_step(
    task: dict[str, Any],
    fn: Callable[..., Any] | None = None,
    memo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one step as described by `task`; return its outcome as plain data.

    Args:
        task: See `kiln.pipeline._scheduler.Schedule._task`.
        fn: The function itself, when running in the process that defined it.
        memo: Output sha -> value of outputs made in this process (read, then updated).
    """
    from kiln.pipeline._outputs import describe_value, load_output, save_output
    from kiln.tracking import configure, configured_store, flush, get_client, start_run

    worker = fn is None
    if worker:
        module, qualname = task["ref"]
        fn = import_ref(module, qualname, task.get("root"))
        if configured_store() != task["store"]:
            configure(task["store"])
    assert fn is not None
    client = get_client()
    started = time.time()
    run = start_run(
        task["name"],
        parent=task["parent_id"] if worker else None,
        tags=task["tags"],
        params=task["params"] or None,
    )
    kwargs: dict[str, Any] = {}
    try:
        for arg, (kind, value) in task["args"].items():
            if kind == "output":
                if memo is not None and value["sha"] in memo:
                    kwargs[arg] = memo[value["sha"]]
                else:
                    kwargs[arg] = load_output(client.artifacts, value, Path(task["models_dir"]))
            elif kind == "file":
                kwargs[arg] = Path(value)
            else:
                kwargs[arg] = value
        begun = time.time()
        value = fn(**kwargs)
        seconds = time.time() - begun
        desc = save_output(client.artifacts, value, label=f"The output of step {task['name']!r}")
        run.set_tags({"kiln.pipeline.output": desc["sha"], "kiln.pipeline.format": desc["format"]})
        if desc["format"] == "kiln-model":
            _save_model_on_run(value, run)
        if memo is not None:
            memo[desc["sha"]] = value
        run.log_metric("kiln.pipeline.seconds", seconds)
        from kiln.pipeline._reproduce import IMPORTS_TAG, imported_optional_dependencies

        run.set_tag(IMPORTS_TAG, ",".join(imported_optional_dependencies()))
    except BaseException as exc:
        shapes = ", ".join(f"{k}: {describe_value(v)}" for k, v in kwargs.items()) or "none"
        error = (
            f"Step {task['name']!r} raised {type(exc).__name__}: {exc}\n"
            f"  inputs: {shapes}\n{user_traceback(exc)}"
        )
        run.end("failed", error=error)
        if worker:
            flush()
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {
            "status": "failed",
            "error": error,
            "run_id": run.id,
            "start": started,
            "end": time.time(),
        }
    run.end("finished")
    if worker:
        flush()
    return {
        "status": "done",
        "output": desc,
        "run_id": run.id,
        "start": started,
        "end": time.time(),
        "seconds": seconds,
    }
