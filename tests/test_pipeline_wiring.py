"""Issue 15 for pipeline, notebooks and autolog: one SweepResult, no cycles, public names only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kiln
import kiln.notebooks
import kiln.pipeline
from nbutil import write_nb

SRC = Path(kiln.__file__).resolve().parent
PACKAGES = ("pipeline", "notebooks", "autolog")
CLI_FILES = ("run.py", "sweep.py", "notebook.py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in the file, function-local ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def _files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in sorted((SRC / pkg).glob("*.py"))]
    return files + [SRC / "cli" / name for name in CLI_FILES]


@pytest.mark.slow
def test_a_function_sweep_and_a_notebook_sweep_return_the_same_class(tmp_path: Path) -> None:
    assert kiln.notebooks.SweepResult is kiln.pipeline.SweepResult

    def score(x: int) -> float:
        return -((x - 2) ** 2)

    found = kiln.sweep(score, {"x": [1, 2, 3]})
    src = write_nb(
        tmp_path / "obj.ipynb", "x = 0", "import kiln\nkiln.log_metric('loss', (x - 2) ** 2)"
    )
    grid = kiln.notebooks.run_grid(
        src, {"x": [1, 2, 4]}, cwd=tmp_path, objective="loss", fork=False
    )
    assert type(found) is type(grid)
    for sweep, objective, best_x, value in ((found, "objective", 2, 0.0), (grid, "loss", 2, 0.0)):
        best = sweep.best
        assert best is not None
        assert best["params"] == best.params == best.parameters == {"x": best_x}
        assert best.run_id == best["run_id"]
        assert best.status == "finished"
        assert sweep.best_value == value
        assert [t.trial for t in sweep.trials] == [0, 1, 2]
        assert sweep.failed == []
        assert len(sweep.results) == 3
        assert sweep.seconds > 0
        table = sweep.table()
        assert list(table["best"]) == [True, False, False]
        assert table.loc[0, f"metrics.{objective}"] == value
    # a notebook sweep's results are still its NotebookResults; a function sweep's, its trials
    assert all(isinstance(r, kiln.NotebookResult) for r in grid.results)
    assert grid.best is not None
    assert grid.best.result.parameters == {"x": 2}
    assert found.results == found.trials


def test_no_import_cycle_inside_pipeline_or_notebooks() -> None:
    for pkg in ("pipeline", "notebooks"):
        modules = {_module_name(p): p for p in (SRC / pkg).glob("*.py")}
        graph = {
            m: {
                target
                for _, module, names in _imports(p)
                for target in [module, *(f"{module}.{n}" for n in names)]
                if target in modules and target != m
            }
            for m, p in modules.items()
        }

        def reaches(start: str, goal: str, graph: dict[str, set[str]] = graph) -> bool:
            seen, todo = set(), list(graph[start])
            while todo:
                m = todo.pop()
                if m == goal:
                    return True
                if m not in seen:
                    seen.add(m)
                    todo += graph[m]
            return False

        cycles = sorted(m for m in graph if reaches(m, m))
        assert cycles == [], f"modules of kiln.{pkg} in an import cycle: {cycles}"


def test_no_root_facade_nor_another_packages_private_names() -> None:
    found = []
    for path in _files():
        own = path.parent.name
        for line, module, names in _imports(path):
            where = f"{path.relative_to(SRC.parent)}:{line}"
            parts = module.split(".")
            if module == "kiln":
                found.append(f"{where}: import kiln / from kiln import {names}")
            elif parts[0] == "kiln" and not parts[1].startswith("_") and parts[1] != own:
                private = [p for p in parts[2:] if p.startswith("_")]
                private += [n for n in names if n.startswith("_")]
                if private:
                    found.append(f"{where}: {module} {names}")
    assert found == []


def test_the_pipeline_state_reads_the_environment_through_the_settings_table() -> None:
    readers = []
    for path in _files():
        text = path.read_text(encoding="utf-8")
        for name in ("KILN_STORE", "KILN_HOME"):
            if f'environ.get("{name}"' in text or f'getenv("{name}"' in text:
                readers.append(f"{path.name}: {name}")
    assert readers == []


def test_kilns_warnings_here_are_kiln_warnings() -> None:
    from kiln.notebooks._params import ParametersCellWarning

    for warning in (
        kiln.pipeline.PickledOutputWarning,
        kiln.autolog.AutologWarning,
        ParametersCellWarning,
    ):
        assert issubclass(warning, kiln.KilnWarning), warning
        assert issubclass(warning, UserWarning), warning  # as before: filters keep working


def test_an_unknown_output_format_is_a_pipeline_error(tmp_path: Path) -> None:
    artifacts = kiln.get_client().artifacts
    desc = kiln.pipeline.save_output(artifacts, {"a": 1})
    assert kiln.pipeline.load_output(artifacts, desc, tmp_path) == {"a": 1}
    with pytest.raises(
        kiln.PipelineError, match=r"Unknown pipeline output format 'bogus'.*expected one of"
    ):
        kiln.pipeline.load_output(artifacts, {**desc, "format": "bogus"}, tmp_path)


def test_the_old_name_of_a_notebook_step_still_works_and_says_the_new_one(tmp_path: Path) -> None:
    src = write_nb(
        tmp_path / "train.ipynb",
        "alpha = 1.0",
        "import kiln\nkiln.record('a', alpha)",
        parameters=0,
    )
    new = kiln.notebooks.notebook_step(src, outputs="a")
    with pytest.warns(
        DeprecationWarning,
        match=r"kiln\.notebooks\.step is deprecated: use kiln\.notebooks\.notebook_step",
    ):
        old = kiln.notebooks.step(src, outputs="a")
    assert old.__name__ == new.__name__ == "train"
    assert old.__module__ == new.__module__ == __name__  # the caller, not the alias
    assert (
        str(old.__signature__) == str(new.__signature__) == "(*, alpha=<the notebook's own value>)"
    )
