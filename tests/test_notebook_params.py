"""Parameter typing, translation and injection, compared with papermill's own code."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from papermill.cli import _resolve_type
from papermill.inspection import inspect_notebook
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from papermill.translators import PythonTranslator

import kiln
from kiln.notebooks import codify, parse_value, translate
from kiln.notebooks._params import (
    ParametersCellWarning,
    inject,
    parameter_names,
    parse_parameters_cell,
)
from nbutil import write_nb

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
@settings(max_examples=300, deadline=None)
def test_translate_matches_papermill(value: object) -> None:
    assert translate(value) == PythonTranslator.translate(value)


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), values, max_size=5))
@settings(max_examples=100, deadline=None)
def test_injected_source_matches_papermill(params: dict) -> None:
    assert codify(params) == PythonTranslator.codify(params)


@given(st.text(max_size=12) | st.from_regex(r"-?\d{1,5}(\.\d{0,3})?(e-?\d)?", fullmatch=True))
@settings(max_examples=300, deadline=None)
def test_p_values_are_typed_like_papermill(text: str) -> None:
    ours, theirs = parse_value(text), _resolve_type(text)
    assert type(ours) is type(theirs)
    assert ours == theirs or (isinstance(ours, float) and math.isnan(ours) and math.isnan(theirs))


def test_p_examples_from_the_issue() -> None:
    assert parse_value("3.5") == 3.5
    assert parse_value("hi") == "hi"
    assert parse_value("3") == 3
    assert parse_value("True") is True
    assert parse_value("None") is None


@pytest.mark.parametrize(
    "layout",
    ["after-parameters", "no-parameters", "replace-injected"],
)
def test_injection_placement_matches_papermill(tmp_path: Path, layout: str) -> None:
    cells: list = [("md", "# title"), "a = 1\nb = 'x'", "print(a, b)"]
    path = write_nb(
        tmp_path / "nb.ipynb", *cells, parameters=1 if layout != "no-parameters" else None
    )
    nb = nbformat.read(path, as_version=4)
    if layout == "replace-injected":
        nb.cells.insert(
            2, nbformat.v4.new_code_cell("a = 0", metadata={"tags": ["injected-parameters"]})
        )
    params = {"a": 2.5, "b": "y", "c": [1, {"k": None}]}
    pm_input = tmp_path / "pm.ipynb"
    nbformat.write(nb, pm_input)
    theirs = parameterize_notebook(load_notebook_node(str(pm_input)), params)
    ours = copy.deepcopy(nb)
    inject(ours, params)
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]
    assert [c.metadata.get("tags") or [] for c in ours.cells] == [
        c.metadata.get("tags") or [] for c in theirs.cells
    ]
    assert ours.metadata.papermill["parameters"] == theirs.metadata.papermill["parameters"]


def test_parameter_names_read_the_parameters_cell() -> None:
    source = "%matplotlib inline\nalpha = 0.1  # the rate\nn: int = 10\nx, y = 1, 2\n"
    assert parameter_names(source) == ["alpha", "n", "x", "y"]


def test_an_unknown_parameter_names_the_closest_one(tmp_path: Path) -> None:
    path = write_nb(tmp_path / "nb.ipynb", "alpha = 1.0", "print(alpha)")
    with pytest.raises(kiln.ParameterError, match=r"'alpah' is not defined.*Did you mean 'alpha'"):
        kiln.run_notebook(path, {"alpah": 2})


def test_parameters_without_a_parameters_cell_are_refused(tmp_path: Path) -> None:
    path = write_nb(tmp_path / "nb.ipynb", "alpha = 1.0", parameters=None)
    with pytest.raises(kiln.ParameterError, match="no cell tagged 'parameters'"):
        kiln.run_notebook(path, {"alpha": 2})


def test_a_parameter_name_must_be_an_identifier(tmp_path: Path) -> None:
    path = write_nb(tmp_path / "nb.ipynb", "alpha = 1.0")
    with pytest.raises(kiln.ParameterError, match="not a Python identifier"):
        kiln.run_notebook(path, {"1x": 2}, allow_unknown_params=True)


# papermill's own test notebook: its parameters cell ends in a line that does not parse
# (`= 2`, line 14). papermill reads the cell line by line and still injects; kiln reads it
# statement by statement (papermill's line reader also skips `d = a == 3`, which parses).
COMPLEX = Path(papermill.__file__).parent / "tests" / "notebooks" / "complex_parameters.ipynb"


def test_a_parameters_cell_with_a_syntax_error_is_read_statement_by_statement() -> None:
    source = nbformat.read(COMPLEX, as_version=4).cells[0].source
    with pytest.warns(ParametersCellWarning, match=r"syntax error at line 14 \(invalid syntax\)"):
        assert parameter_names(source) == ["msg", "a", "b", "c", "d"]
    assert parse_parameters_cell(source) == (["msg", "a", "b", "c", "d"], [(14, "invalid syntax")])
    assert set(inspect_notebook(str(COMPLEX))) <= {"msg", "a", "b", "c", "d"}
    # Statements before, between and after broken lines are kept; line numbers stay true.
    names, errors = parse_parameters_cell(
        "%matplotlib inline\nx = 1\nb = [\n  1,\n= 2\ny = 3\nif x:\n  z = 1\n  = 3\nw: int = 4"
    )
    assert names == ["x", "y", "w"]
    assert [line for line, _ in errors] == [3, 4, 5, 9]


def test_complex_parameters_runs_injected_as_papermill_does(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    src = tmp_path / "complex_parameters.ipynb"
    src.write_bytes(COMPLEX.read_bytes())
    pm_out = tmp_path / "pm.ipynb"
    papermill.execute_notebook(
        str(src), str(pm_out), parameters={"a": 3.5}, prepare_only=True, progress_bar=False
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kiln"), "notebook", "run", str(src),
         "-p", "a=3.5", "-o", "kiln.ipynb"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    # Injected, then the parameters cell itself fails to compile, as under papermill.
    assert done.returncode == 1, done.stderr
    assert "syntax error at line 14" in done.stderr
    assert "SyntaxError" in done.stderr
    assert "defines []" not in done.stderr
    ours = nbformat.read(tmp_path / "kiln.ipynb", as_version=4)
    theirs = nbformat.read(pm_out, as_version=4)
    assert [c.source for c in ours.cells] == [c.source for c in theirs.cells]
    assert [c.metadata.get("tags") for c in ours.cells] == [
        c.metadata.get("tags") for c in theirs.cells
    ]
    assert ours.cells[1].source == "# Parameters\na = 3.5\n"
    assert ours.metadata.papermill["parameters"] == theirs.metadata.papermill["parameters"]

    unknown = subprocess.run(
        [str(Path(sys.executable).parent / "kiln"), "notebook", "run", str(src), "-p", "e=1"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert unknown.returncode == 1
    assert (
        "which defines ['msg', 'a', 'b', 'c', 'd'] (the parameters cell has a syntax error at "
        "line 14 (invalid syntax); kiln read the other lines)"
    ) in " ".join(unknown.stderr.split())


def test_a_notebook_run_records_the_parameters_cells_defaults_too(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # Only the injected parameters were recorded: a run with `-p alpha=2` showed alpha,
    # but not the layers, name or seed it ran with.
    write_nb(
        tmp_path / "train.ipynb",
        "import pathlib\nalpha = 0.5\nlayers = [64, 32]\nname: str = 'base'\nseed = 7\n"
        "data = pathlib.Path('data')\nseed = 8",
        "import kiln\nkiln.log_param('seed', seed)",  # the notebook logging a param agrees
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kiln"), "notebook", "run", "train.ipynb",
         "-p", "alpha=2", "--json"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = kiln.get_run(json.loads(done.stdout)["run_id"])
    # Injected values override defaults; a computed default (`data`) has no value to record.
    assert run.params == {"alpha": "2", "layers": "[64, 32]", "name": "base", "seed": "8"}
    plain = subprocess.run(
        [str(Path(sys.executable).parent / "kiln"), "notebook", "run", "train.ipynb", "--json"],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert kiln.get_run(json.loads(plain.stdout)["run_id"]).params["alpha"] == "0.5"


def test_parameter_defaults_reads_literals_only() -> None:
    from kiln.notebooks._params import parameter_defaults

    source = "a = b = 1\nc: int = 2\nd = f()\nn = 1\nn += 1\nx, y = 1, 2\n%time z = 3\nw = -1.5"
    assert parameter_defaults(source) == {"a": 1, "b": 1, "c": 2, "w": -1.5}
