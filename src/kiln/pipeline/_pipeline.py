"""`kiln.Pipeline`: steps run in dependency order, cached by content, tracked as runs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from kiln._exceptions import PipelineError, StepFailedError, did_you_mean
from kiln.pipeline._graph import Step, link, make_step, steps_of
from kiln.pipeline._project import PARAMS_FILE, find_root, flatten
from kiln.pipeline._result import PipelineResult, StepOutcome

__all__ = ["Pipeline"]

_TAG = "kiln.pipeline"


class Pipeline:
    """Plain functions run as a cached, tracked pipeline; the graph comes from names.

    A step's parameters are filled by the outputs of the steps with those names, else
    by params: `params["<step>"]["<name>"]`, then `params["<name>"]`, then the
    parameter's default. A parameter annotated `pathlib.Path` is an input file: its
    content is part of the step's cache key.

    ```python
    def load(path: Path) -> pd.DataFrame: ...
    def train(load: pd.DataFrame, alpha: float) -> kiln.Model: ...

    result = kiln.Pipeline([load, train]).run({"path": "data.csv", "train": {"alpha": 0.1}})
    result["train"]  # the model, read back from the artifact store
    ```

    Args:
        steps: The step functions (any order).
        name: The pipeline's name; also the default experiment of its runs.
        root: The project folder (state, cache index, params.yaml, relative input
            paths); default: the nearest folder with pyproject.toml or params.yaml.
    """

    def __init__(
        self,
        steps: Iterable[Callable[..., Any]],
        *,
        name: str = "pipeline",
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.steps: dict[str, Step] = link(make_step(f) for f in steps)
        if not self.steps:
            raise PipelineError("A pipeline needs at least one step function.")
        self.name = name
        self.root = Path(root).resolve() if root is not None else None

    @classmethod
    def from_module(
        cls, module: ModuleType, *, name: str | None = None, root: str | None = None
    ) -> Pipeline:
        """Every public function defined in `module` is a step; `_helpers` are not."""
        found = steps_of(module)
        if not found:
            raise PipelineError(
                f"Module {module.__name__!r} defines no public function to use as a step "
                "(functions whose names start with _ are helpers)."
            )
        return cls(found, name=name or module.__name__.rsplit(".", 1)[-1], root=root)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {' -> '.join(self.steps)}>"

    def __len__(self) -> int:
        return len(self.steps)

    def graph(self) -> dict[str, list[str]]:
        """Step name -> the steps it reads, in run order."""
        return {n: list(s.deps) for n, s in self.steps.items()}

    def dependants(self, name: str) -> list[str]:
        """`name` and every step downstream of it, in run order."""
        self._check_names([name])
        found = {name}
        for n, s in self.steps.items():
            if any(d in found for d in s.deps):
                found.add(n)
        return [n for n in self.steps if n in found]

    def _check_names(self, names: Iterable[str]) -> None:
        for n in names:
            if n not in self.steps:
                raise PipelineError(
                    f"The pipeline has no step {n!r}.{did_you_mean(n, self.steps)} "
                    f"Its steps: {', '.join(self.steps)}."
                )

    # ------------------------------------------------------------- preparing
    def project_root(self) -> Path:
        """The project folder (see the constructor)."""
        return self.root or find_root()

    def resolve(self, params: Mapping[str, Any]) -> dict[str, dict[str, tuple[str, str, Any]]]:
        """Step -> argument -> (kind, param key, value); kind: dep, param, file, default."""
        root = self.project_root()
        out: dict[str, dict[str, tuple[str, str, Any]]] = {}
        for s in self.steps.values():
            args: dict[str, tuple[str, str, Any]] = {}
            section = params.get(s.name)
            for arg in s.args:
                if arg in s.deps:
                    args[arg] = ("dep", arg, None)
                    continue
                if isinstance(section, Mapping) and arg in section:
                    key, value = f"{s.name}.{arg}", section[arg]
                elif arg in params:
                    key, value = arg, params[arg]
                elif arg in s.defaults:
                    args[arg] = ("default", arg, s.defaults[arg])
                    continue
                else:
                    known = [*self.steps, *flatten(params)]
                    raise PipelineError(
                        f"Step {s.name!r} needs {arg!r}, but no step is named so and the "
                        f"params have neither {s.name}.{arg} nor {arg}.{did_you_mean(arg, known)} "
                        f"Add it to {PARAMS_FILE} (or pass -p {s.name}.{arg}=VALUE), or give "
                        "the parameter a default."
                    )
                if arg in s.files:
                    path = Path(os.fspath(value))
                    path = path if path.is_absolute() else root / path
                    if not path.is_file():
                        raise PipelineError(
                            f"Step {s.name!r} reads the input file {arg}={value!r}, which does "
                            f"not exist (looked for {path})."
                        )
                    args[arg] = ("file", key, str(path))
                else:
                    args[arg] = ("param", key, value)
            out[s.name] = args
        return out

    def _selection(
        self, force: Iterable[str], from_step: str | None, only: Iterable[str] | None
    ) -> tuple[set[str], dict[str, str]]:
        force = list(force)
        self._check_names(force)
        forced = dict.fromkeys(force, "forced (--force)")
        if from_step is not None:
            forced.update(dict.fromkeys(self.dependants(from_step), f"forced (--from {from_step})"))
        selected = set(self.steps)
        if only:
            only = list(only)
            self._check_names(only)
            selected = set(only)
        return selected, forced

    # ------------------------------------------------------------------- run
    def plan(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        force: Iterable[str] = (),
        from_step: str | None = None,
        only: Iterable[str] | None = None,
        no_cache: bool = False,
    ) -> PipelineResult:
        """A dry run: which steps would run and why (nothing runs, nothing is recorded)."""
        from kiln.pipeline._scheduler import Schedule

        return Schedule(self, params, overrides, force, from_step, only, no_cache).dry_run()

    def run(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        force: Iterable[str] = (),
        from_step: str | None = None,
        only: Iterable[str] | None = None,
        no_cache: bool = False,
        runner: str = "inprocess",
        jobs: int = 1,
        address: str | None = None,
        start_method: str = "forkserver",
        experiment: str | None = None,
        on_event: Callable[[StepOutcome], None] | None = None,
        raise_on_failure: bool = True,
        target: str | None = None,
    ) -> PipelineResult:
        """Run the steps whose cache key changed; reuse the others' stored outputs.

        The run is tracked: one pipeline run, with one child run per step (timing,
        cache hit or miss, cache key, code hash, params read, output hash).

        Args:
            params: The params; default: the project's params.yaml / [tool.kiln.params].
            overrides: Dotted-key overrides (`{"train.alpha": 0.3}`), applied on top.
            force: Steps to re-run even when cached.
            from_step: Re-run this step and everything downstream of it.
            only: Run only these steps; their inputs come from the cache.
            no_cache: Re-run every step.
            runner: `inprocess`, `processes` or `ray`.
            jobs: Steps run at once (processes, Ray).
            address: The Ray cluster to join (default: a local Ray).
            start_method: `forkserver` or `spawn`, for the process runner.
            experiment: The experiment of the pipeline run (default: the pipeline's name).
            on_event: Called with a step's `StepOutcome` when it starts and when it ends.
            raise_on_failure: Raise `StepFailedError` (after finishing every independent
                step) when a step fails; else return the result.
            target: How the pipeline was named on the command line (for reproduction).

        Returns:
            The `PipelineResult`.

        Raises:
            StepFailedError: A step raised; its error shows the step, its inputs' types
                and shapes and the user's traceback.
            PipelineError: The pipeline cannot run as asked (missing param, unknown step).
        """
        from kiln.pipeline._runners import make_runner
        from kiln.pipeline._scheduler import Schedule

        if runner in ("processes", "ray"):
            self._check_importable(runner)
        schedule = Schedule(self, params, overrides, force, from_step, only, no_cache)
        runner_obj = make_runner(runner, jobs, address, start_method)
        try:
            result = schedule.execute(
                runner_obj, experiment=experiment or self.name, on_event=on_event, target=target
            )
        finally:
            runner_obj.close()
        if result.failed and raise_on_failure:
            failures = {n: result.steps[n].error or "" for n in result.failed}
            detail = "\n\n".join(failures.values())
            skipped = result.with_status("skipped")
            raise StepFailedError(
                f"{len(failures)} step(s) failed: {', '.join(failures)}"
                + (f"; not run because of it: {', '.join(skipped)}" if skipped else "")
                + ". Steps that finished stay cached.\n\n"
                + detail,
                result,
                failures,
            )
        return result

    def _check_importable(self, runner: str) -> None:
        for s in self.steps.values():
            module, qualname = s.ref
            if module == "__main__" or "<locals>" in qualname:
                where = "in __main__" if module == "__main__" else "inside a function"
                raise PipelineError(
                    f"Step {s.name!r} is defined {where}; the {runner} runner imports each "
                    "step by module and name in another process. Move it to a module (a .py "
                    "file on the path), or use the in-process runner."
                )

    def sweep(self, space: Mapping[str, Any], **kwargs: Any) -> Any:
        """Run the pipeline once per point of `space` (dotted param keys); see `kiln.sweep`."""
        from kiln.pipeline._sweep import sweep_pipeline

        return sweep_pipeline(self, space, **kwargs)
