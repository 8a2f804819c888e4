"""Steps and the graph between them, found from parameter names alone."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from kiln._exceptions import PipelineError

__all__ = ["Step", "add_to_path", "step", "steps_of"]

_MARK = "__kiln_step__"


@dataclass(frozen=True)
class Step:
    """One step: a plain function whose parameters name other steps or params.

    Attributes:
        name: The step's name, which is also the name of its output.
        fn: The function.
        deps: Parameter names filled by other steps' outputs.
        args: Every parameter name, in order.
        files: Parameters annotated `pathlib.Path`: input files whose content is hashed.
        cache: Whether the step's output may be reused.
    """

    name: str
    fn: Callable[..., Any]
    args: tuple[str, ...]
    deps: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    cache: bool = True

    @property
    def ref(self) -> tuple[str, str]:
        """(module, qualname): how a worker process imports the function."""
        return self.fn.__module__, self.fn.__qualname__


def step(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, cache: bool = True
) -> Any:
    """Mark a function as a step (optional: any public function of a module is one).

    The function is returned unchanged, so it stays a plain function you can call.

    Args:
        fn: The function (when used as `@step` without arguments).
        name: The step's (and its output's) name; default: the function's name.
        cache: False to re-run the step every time (it reads a clock or the network).
    """

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        setattr(f, _MARK, {"name": name or f.__name__, "cache": cache})
        return f

    return mark(fn) if fn is not None else mark


def _is_path_annotation(annotation: Any) -> bool:
    if annotation is Path:
        return True
    if isinstance(annotation, str):
        return annotation in ("Path", "pathlib.Path")
    return False


def make_step(fn: Callable[..., Any]) -> Step:
    """A `Step` from a function (its `@step` options, if any)."""
    if not callable(fn):
        raise PipelineError(f"A pipeline step must be a function; got {type(fn).__name__}.")
    options = getattr(fn, _MARK, {})
    name = options.get("name") or getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise PipelineError("A step needs a name: use a def function or @kiln.step(name=...).")
    sig = inspect.signature(fn)
    bad = [p.name for p in sig.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if bad:
        raise PipelineError(
            f"Step {name!r} takes *{bad[0]}: a step's inputs are named parameters, each "
            "filled by another step's output or a param."
        )
    files = tuple(p.name for p in sig.parameters.values() if _is_path_annotation(p.annotation))
    defaults = {p.name: p.default for p in sig.parameters.values() if p.default is not p.empty}
    return Step(
        name=name,
        fn=fn,
        args=tuple(sig.parameters),
        files=files,
        defaults=defaults,
        cache=bool(options.get("cache", True)),
    )


def link(steps: Iterable[Step]) -> dict[str, Step]:
    """Steps by name with their `deps` filled in, in a dependency-respecting order."""
    by_name: dict[str, Step] = {}
    for s in steps:
        if s.name in by_name:
            raise PipelineError(
                f"Two steps are named {s.name!r}; step names (and so output names) must be "
                "unique. Rename one, or give it @kiln.step(name=...)."
            )
        by_name[s.name] = s
    linked = {
        name: Step(
            name=s.name,
            fn=s.fn,
            args=s.args,
            deps=tuple(a for a in s.args if a in by_name and a not in s.files),
            files=s.files,
            defaults=s.defaults,
            cache=s.cache,
        )
        for name, s in by_name.items()
    }
    return {name: linked[name] for name in _toposort(linked)}


def _toposort(steps: Mapping[str, Step]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise PipelineError(
                "The steps depend on each other in a cycle: "
                + " -> ".join(cycle)
                + ". A step's parameters name the steps it needs; break the cycle by renaming one."
            )
        state[name] = 1
        for dep in steps[name].deps:
            visit(dep, [*path, name])
        state[name] = 2
        order.append(name)

    for name in steps:
        visit(name, [])
    return order


def steps_of(module: ModuleType) -> list[Callable[..., Any]]:
    """Every public function defined in `module`, in source order (helpers start with `_`)."""
    found: list[Callable[..., Any]] = [
        obj
        for key, obj in vars(module).items()
        if inspect.isfunction(obj) and not key.startswith("_") and obj.__module__ == module.__name__
    ]
    found.sort(key=lambda f: f.__code__.co_firstlineno)
    return found


def add_to_path(root: Path) -> None:
    """Let the project's modules be imported (root and root/src on sys.path)."""
    for folder in (root / "src", root):
        text = str(folder)
        if folder.is_dir() and text not in sys.path:
            sys.path.insert(0, text)
