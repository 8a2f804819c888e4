"""Pipelines of plain functions: cached by content, tracked, run here, on processes or Ray.

A step is a plain function; its parameters name the steps whose outputs it reads, or
params (from `params.yaml`). Functions whose names start with `_` are helpers.

```python
pipe = kiln.Pipeline.from_module(my_steps)    # or kiln.Pipeline([load, split, train])
result = pipe.run()                            # only steps whose key changed run
result["train"]                                # an output, read back from the store
```

A step's cache key hashes its code (and the project functions it calls), the params
it reads and its inputs' content hashes. Outputs are stored by type (DataFrame as
Parquet, arrays as .npy, `kiln.Model` in kiln's model format, JSON data as JSON).
Every run is a tracked run with a child run per step. On the command line:
`kiln run`, `kiln run --dry-run`, `kiln pipeline show`, `kiln lineage OUTPUT`,
`kiln sweep`, `kiln runs reproduce RUN`; each is a call to a function here
(`Pipeline.run`, `lineage`, `sweep`, `reproduce`). The project helpers that `kiln run`
uses before it imports any user code (`find_root`, `tool_config`, `parse_overrides`,
`up_to_date`, `read_state`, `record_noop`, `load_target`, `add_to_path`) are public too,
as are the stored-output format (`save_output`, `load_output`) and the hash of cache
keys (`digest`), which steps made elsewhere (`kiln.notebooks.notebook_step`) share.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.pipeline._graph import Step, add_to_path, step
    from kiln.pipeline._hash import digest
    from kiln.pipeline._lineage import lineage
    from kiln.pipeline._noop import record_noop
    from kiln.pipeline._outputs import PickledOutputWarning, load_output, save_output
    from kiln.pipeline._pipeline import Pipeline
    from kiln.pipeline._project import find_root, parse_overrides, tool_config
    from kiln.pipeline._reproduce import reproduce
    from kiln.pipeline._result import PipelineResult, StepOutcome
    from kiln.pipeline._state import read_state, up_to_date
    from kiln.pipeline._sweep import sweep
    from kiln.pipeline._target import load_target
    from kiln.pipeline._trials import SweepResult, Trial

# Loaded on first use: `kiln run`'s no-op check imports only _project, _state and _noop.
_LAZY = {
    "PickledOutputWarning": "kiln.pipeline._outputs",
    "Pipeline": "kiln.pipeline._pipeline",
    "PipelineResult": "kiln.pipeline._result",
    "Step": "kiln.pipeline._graph",
    "StepOutcome": "kiln.pipeline._result",
    "SweepResult": "kiln.pipeline._trials",
    "Trial": "kiln.pipeline._trials",
    "add_to_path": "kiln.pipeline._graph",
    "digest": "kiln.pipeline._hash",
    "find_root": "kiln.pipeline._project",
    "lineage": "kiln.pipeline._lineage",
    "load_output": "kiln.pipeline._outputs",
    "load_target": "kiln.pipeline._target",
    "parse_overrides": "kiln.pipeline._project",
    "read_state": "kiln.pipeline._state",
    "record_noop": "kiln.pipeline._noop",
    "reproduce": "kiln.pipeline._reproduce",
    "save_output": "kiln.pipeline._outputs",
    "step": "kiln.pipeline._graph",
    "sweep": "kiln.pipeline._sweep",
    "tool_config": "kiln.pipeline._project",
    "up_to_date": "kiln.pipeline._state",
}

__all__ = [
    "PickledOutputWarning",
    "Pipeline",
    "PipelineResult",
    "Step",
    "StepOutcome",
    "SweepResult",
    "Trial",
    "add_to_path",
    "digest",
    "find_root",
    "lineage",
    "load_output",
    "load_target",
    "parse_overrides",
    "read_state",
    "record_noop",
    "reproduce",
    "save_output",
    "step",
    "sweep",
    "tool_config",
    "up_to_date",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kiln.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
