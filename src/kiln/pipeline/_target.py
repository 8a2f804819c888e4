"""Finding a pipeline by name: `pkg.module:name`, `pkg.module` or `path/to/file.py`.

Apart from `_graph` so that the graph does not import `Pipeline` (which imports it).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from kiln._exceptions import ConfigurationError, PipelineError, did_you_mean
from kiln.pipeline._graph import add_to_path
from kiln.pipeline._pipeline import Pipeline
from kiln.pipeline._project import tool_config

__all__ = ["load_target"]


_COMMAND_WORDS = {
    "list": "kiln runs list",
    "ls": "kiln runs list",
    "show": "kiln runs show RUN (or kiln pipeline show)",
    "compare": "kiln runs compare A B",
    "delete": "kiln runs delete RUN",
    "reproduce": "kiln runs reproduce RUN",
    "runs": "kiln runs list",
    "status": "kiln pipeline show",
}


def _command_hint(word: str) -> str:
    hint = _COMMAND_WORDS.get(word.lower())
    return f" Did you mean `{hint}`? (`kiln run` runs a pipeline.)" if hint else ""


def _configured_pipeline(root: Path) -> str | None:
    """`[tool.kiln] pipeline` of the root's pyproject.toml, if any (never raises)."""
    try:
        found = tool_config(root).get("pipeline")
    except ConfigurationError:  # a broken pyproject.toml is reported where it is read
        return None
    return str(found) if found else None


def load_target(target: str, root: Path) -> Any:
    """Import a pipeline from `pkg.module:name`, `pkg.module` or `path/to/file.py`.

    A module without a `:name` becomes `Pipeline.from_module(module)`.
    """
    add_to_path(root)
    module_name, _, attr = target.partition(":")
    if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
        path = (root / module_name).resolve()
        if not path.is_file():
            raise PipelineError(f"Pipeline file {path} does not exist.")
        try:
            rel = path.relative_to(root).with_suffix("")
            module_name = ".".join(rel.parts)
        except ValueError:
            add_to_path(path.parent)
            module_name = path.stem
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name in (
            module_name,
            module_name.split(".")[0],
        )
        if not missing:  # the module exists but an import inside it failed
            raise PipelineError(
                f"Cannot import the pipeline module {module_name!r} (project root {root}): {exc}"
            ) from exc
        configured = _configured_pipeline(root)
        where = (
            f" ([tool.kiln] pipeline in {root / 'pyproject.toml'} names it)"
            if configured == target
            else ""
        )
        raise PipelineError(
            f"There is no pipeline module {module_name!r}{where}: no {module_name.replace('.', '/')}.py "
            f"in the project root {root}, and none installed. Give a module of step functions "
            "(kiln run pkg.steps), pkg.steps:pipeline, or a file (kiln run steps.py)."
            + _command_hint(module_name)
        ) from exc
    if not attr:
        return Pipeline.from_module(module)
    try:
        obj = getattr(module, attr)
    except AttributeError:
        names = [k for k in vars(module) if not k.startswith("_")]
        raise PipelineError(
            f"Module {module_name!r} has no attribute {attr!r}.{did_you_mean(attr, names)}"
        ) from None
    if isinstance(obj, Pipeline):
        return obj
    if callable(obj):
        made = obj()
        if isinstance(made, Pipeline):
            return made
    raise PipelineError(
        f"{target!r} is a {type(obj).__name__}, not a kiln.Pipeline (or a function returning one)."
    )
