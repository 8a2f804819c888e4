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
`kiln sweep`, `kiln runs reproduce RUN`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.pipeline._graph import Step, step
    from kiln.pipeline._outputs import PickledOutputWarning
    from kiln.pipeline._pipeline import Pipeline
    from kiln.pipeline._result import PipelineResult, StepOutcome
    from kiln.pipeline._sweep import SweepResult, sweep

# Loaded on first use: `kiln run`'s no-op check imports only _project and _state.
_LAZY = {
    "PickledOutputWarning": "kiln.pipeline._outputs",
    "Pipeline": "kiln.pipeline._pipeline",
    "PipelineResult": "kiln.pipeline._result",
    "Step": "kiln.pipeline._graph",
    "StepOutcome": "kiln.pipeline._result",
    "SweepResult": "kiln.pipeline._sweep",
    "step": "kiln.pipeline._graph",
    "sweep": "kiln.pipeline._sweep",
}

__all__ = [
    "PickledOutputWarning",
    "Pipeline",
    "PipelineResult",
    "Step",
    "StepOutcome",
    "SweepResult",
    "step",
    "sweep",
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
