"""`kiln notebook check`, `diff`, `show` and `pair`."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from kiln.cli import cli
from kiln.notebooks import check_notebook, diff_notebooks, notebook_text, pair_notebook

SPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


def _save(path: Path, cells: list) -> Path:
    nbformat.write(new_notebook(cells=cells, metadata=SPEC), path)
    return path


def _out(text: str) -> list:
    return [new_output("stream", name="stdout", text=text)]


def _clean(tmp_path: Path) -> Path:
    return _save(
        tmp_path / "clean.ipynb",
        [
            new_markdown_cell("# ok"),
            new_code_cell("n = 3", execution_count=1, metadata={"tags": ["parameters"]}),
            new_code_cell("import math\nsq = [i * i for i in range(n)]", execution_count=2),
            new_code_cell("print(sum(sq), math.pi)", execution_count=3, outputs=_out("5 3.141592653589793\n")),
            new_code_cell("def f(x):\n    return x + later\nobj = object()\nprint(obj)", execution_count=4,
                          outputs=_out("<object object at 0x7f1234567890>\n")),
            new_code_cell("later = 1\nprint(f(1))", execution_count=5, outputs=_out("2\n")),
        ],
    )  # fmt: skip


def test_a_clean_notebook_passes_with_and_without_rerun(tmp_path: Path) -> None:
    path = _clean(tmp_path)
    assert check_notebook(path).findings == []
    assert check_notebook(path, rerun=True).findings == []  # the address differs, ignored


def test_out_of_order_execution_and_hidden_state_are_flagged(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "messy.ipynb",
        [
            new_code_cell("x = 1", execution_count=1),
            new_code_cell("y = x + z\nprint(y)", execution_count=4, outputs=_out("3\n")),
            new_code_cell("z = 2", execution_count=3),
            new_code_cell("print(hidden)", execution_count=6),
            new_code_cell("print('x')"),
        ],
    )
    report = check_notebook(path)
    kinds = {(f.kind, f.cell) for f in report.findings}
    assert ("out-of-order", 2) in kinds
    assert ("defined-later", 1) in kinds
    assert ("undefined", 3) in kinds
    assert ("missing-count", 4) in kinds
    assert ("count-gap", None) in kinds
    assert ("no-parameters", None) in kinds
    assert not report.ok
    message = next(f.message for f in report.findings if f.kind == "defined-later")
    assert "'z'" in message
    assert "code cell 2" in message


def test_rerun_catches_outputs_that_no_longer_reproduce(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "stale.ipynb",
        [
            new_code_cell("n = 2", execution_count=1, metadata={"tags": ["parameters"]}),
            new_code_cell("print(n * 10)", execution_count=2, outputs=_out("30\n")),
            new_code_cell("print(1 / 3)", execution_count=3, outputs=_out("0.33333333333\n")),
        ],
    )
    assert check_notebook(path).ok  # statically fine
    found = check_notebook(path, rerun=True).findings
    assert [(f.kind, f.cell) for f in found] == [("output-mismatch", 1)]
    assert "'30'" in found[0].message
    assert "'20'" in found[0].message


def test_undeclared_imports_are_flagged_against_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\ndependencies = ["numpy>=1"]\n'
    )
    (tmp_path / "helpers.py").write_text("")
    path = _save(
        tmp_path / "imp.ipynb",
        [
            new_code_cell("import numpy, os, helpers", metadata={"tags": ["parameters"]}),
            new_code_cell("from sklearn.linear_model import Ridge"),
        ],
    )
    found = [(f.kind, f.cell) for f in check_notebook(path).findings]
    assert found == [("undeclared-import", 1)]


def test_cli_check_json_and_exit_code(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["notebook", "check", str(_clean(tmp_path)), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    bad = _save(tmp_path / "bad.ipynb", [new_code_cell("print(q)", execution_count=1)])
    res = runner.invoke(cli, ["notebook", "check", str(bad)])
    assert res.exit_code == 1
    assert "cell 0: undefined" in res.output


def test_diff_shows_sources_and_text_outputs_with_images_summarised(tmp_path: Path) -> None:
    png = "iVBORw0KGgo" * 40
    a = _save(tmp_path / "a.ipynb", [new_code_cell("x = 1\nprint(x)", outputs=_out("1\n"))])
    b = _save(
        tmp_path / "b.ipynb",
        [
            new_code_cell(
                "x = 2\nprint(x)",
                outputs=[*_out("2\n"), new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})],
            )
        ],
    )  # fmt: skip
    text = diff_notebooks(a, b)
    assert "-x = 1" in text
    assert "+x = 2" in text
    assert "+[stdout] 2" in text
    assert "+[image/png] <image/png" in text
    assert png not in text
    assert diff_notebooks(a, a) == ""
    git_style = CliRunner().invoke(
        cli, ["notebook", "diff", "a.ipynb", str(a), "abc", "100644", str(b), "def", "100644"]
    )
    assert git_style.exit_code == 0
    assert "+x = 2" in git_style.output


def test_show_renders_text_for_textconv(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["notebook", "show", str(_clean(tmp_path))])
    assert res.exit_code == 0
    assert "# %% code cell 0 tags=['parameters']" in res.output
    assert notebook_text(_clean(tmp_path), outputs=False).count("[stdout]") == 0


def test_pair_writes_a_percent_script_and_syncs_edits_back(tmp_path: Path) -> None:
    import os

    path = _clean(tmp_path)
    written = pair_notebook(path)
    script = tmp_path / "clean.py"
    assert script in written
    assert "# %%" in script.read_text()
    script.write_text(script.read_text().replace("n = 3", "n = 4"))
    os.utime(script, (path.stat().st_mtime + 10, path.stat().st_mtime + 10))
    pair_notebook(script)
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[1].source == "n = 4"
    assert nb.cells[3].outputs  # outputs kept from the .ipynb
    assert nb.metadata.jupytext["formats"] == "ipynb,py:percent"


def test_pair_without_files_is_an_error(tmp_path: Path) -> None:
    from kiln import NotebookError

    with pytest.raises(NotebookError, match="nothing to pair"):
        pair_notebook(tmp_path / "none.ipynb")
