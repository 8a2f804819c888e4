"""The project a pipeline belongs to: its root, its `[tool.kiln]` table and its params.

The root is the nearest folder, from the working directory up, holding a `pyproject.toml`
or a `params.yaml`; else the working directory. Params come from `params.yaml` at the
root, else from `[tool.kiln.params]` in `pyproject.toml`; `-p key.sub=value` overrides
them (values are read as YAML: `3` is an int, `0.5` a float, `[1, 2]` a list).
Only the standard library is imported here: the no-op check of `kiln run` uses it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kiln._exceptions import ConfigurationError

__all__ = [
    "PARAMS_FILE",
    "apply_overrides",
    "find_root",
    "load_params",
    "parse_overrides",
    "tool_config",
]

PARAMS_FILE = "params.yaml"


def find_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The project root: nearest folder with pyproject.toml or params.yaml, else `start`."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() or (folder / PARAMS_FILE).is_file():
            return folder
    return here


def tool_config(root: Path) -> dict[str, Any]:
    """The `[tool.kiln]` table of the root's pyproject.toml ({} when there is none)."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    table = data.get("tool", {}).get("kiln", {})
    return table if isinstance(table, dict) else {}


def params_source(root: Path) -> Path | None:
    """The file params are read from: params.yaml, else pyproject.toml, else None."""
    if (root / PARAMS_FILE).is_file():
        return root / PARAMS_FILE
    if "params" in tool_config(root):
        return root / "pyproject.toml"
    return None


def load_params(root: Path) -> dict[str, Any]:
    """The project's params (see module docs); {} when it has none."""
    path = root / PARAMS_FILE
    if path.is_file():
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{path} is not valid YAML: {exc}") from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"{path} must hold a mapping of name: value (sections allowed); "
                f"it holds a {type(data).__name__}."
            )
        return data
    params = tool_config(root).get("params", {})
    if not isinstance(params, dict):
        raise ConfigurationError("[tool.kiln.params] in pyproject.toml must be a table.")
    return params


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """`["train.alpha=0.3", "seed=1"]` -> `{"train.alpha": 0.3, "seed": 1}`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigurationError(
                f"A param override is written KEY=VALUE (such as train.alpha=0.3); got {item!r}."
            )
        import yaml

        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


def apply_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `params` with dotted-key overrides applied (sections created as needed)."""
    import copy

    out = copy.deepcopy(dict(params))
    for dotted, value in overrides.items():
        node = out
        *sections, last = dotted.split(".")
        for section in sections:
            child = node.get(section)
            if not isinstance(child, dict):
                child = {}
                node[section] = child
            node = child
        node[last] = value
    return out


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"train": {"alpha": 1}}` -> `{"train.alpha": 1}`."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out
