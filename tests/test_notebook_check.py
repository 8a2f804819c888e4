"""`kiln notebook check`, `diff`, `show` and `pair`."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from kiln import ConfigurationError
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


def _err(ename: str, evalue: str) -> list:
    return [new_output("error", ename=ename, evalue=evalue, traceback=[])]


def test_rerun_honours_nbval_markers_and_tags(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "nbval.ipynb",
        [
            new_code_cell("n = 1", execution_count=1, metadata={"tags": ["parameters"]}),
            # output differs on every run: ignored by comment and by tag
            new_code_cell("# NBVAL_IGNORE_OUTPUT\nimport uuid\nprint(uuid.uuid4())", execution_count=2,
                          outputs=_out("not this\n")),
            new_code_cell("print(uuid.uuid4())", execution_count=3, outputs=_out("nor this\n"),
                          metadata={"tags": ["nbval-ignore-output"]}),
            # never run: it would hang the check
            new_code_cell("# NBVAL_SKIP\nwhile True:\n    pass", execution_count=4),
            new_code_cell("while True:\n    pass", execution_count=5, metadata={"tags": ["nbval-skip"]}),
            # expected errors: the run goes on, and the error is still compared
            new_code_cell("#NBVAL_RAISES_EXCEPTION\n1 / 0", execution_count=6,
                          outputs=_err("ZeroDivisionError", "division by zero")),
            new_code_cell("{}['k']", execution_count=7, outputs=_err("KeyError", "'k'"),
                          metadata={"tags": ["raises-exception"]}),
            new_code_cell("print(n + 1)", execution_count=8, outputs=_out("2\n")),
        ],
    )  # fmt: skip
    report = check_notebook(path, rerun=True, timeout=60)
    assert report.findings == []
    assert report.ok


def test_rerun_still_fails_a_wrong_output_after_an_expected_error(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "raises.ipynb",
        [
            new_code_cell("# NBVAL_RAISES_EXCEPTION\nraise ValueError('boom')", execution_count=1,
                          outputs=_err("ValueError", "other"), metadata={"tags": ["parameters"]}),
            new_code_cell("print(3)", execution_count=2, outputs=_out("4\n")),
            new_code_cell("1 / 0", execution_count=3, outputs=_err("ZeroDivisionError", "division by zero")),
        ],
    )  # fmt: skip
    found = check_notebook(path, rerun=True, timeout=60).findings
    assert [(f.kind, f.cell) for f in found] == [
        ("output-mismatch", 0),  # the expected error's message changed
        ("output-mismatch", 1),
        ("rerun-error", 2),  # an unmarked error still fails
    ]
    assert "NBVAL_RAISES_EXCEPTION" in found[2].message


def test_rerun_does_not_compare_cells_saved_without_running(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "unrun.ipynb",
        [
            new_code_cell("x = 2", metadata={"tags": ["parameters"]}),
            new_code_cell("print(x)", outputs=_out("stale\n")),
        ],
    )
    assert check_notebook(path, rerun=True, timeout=60).findings == []


def test_lax_compares_only_cells_marked_check_output(tmp_path: Path) -> None:
    cells = [
        new_code_cell("print(1)", execution_count=1, outputs=_out("9\n"), metadata={"tags": ["parameters"]}),
        new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(2)", execution_count=2, outputs=_out("8\n")),
        new_code_cell("print(3)", execution_count=3, outputs=_out("7\n"), metadata={"tags": ["nbval-check-output"]}),
    ]  # fmt: skip
    path = _save(tmp_path / "lax.ipynb", cells)
    strict_cells = [(f.kind, f.cell) for f in check_notebook(path, rerun=True, timeout=60).findings]
    assert strict_cells == [("output-mismatch", 0), ("output-mismatch", 1), ("output-mismatch", 2)]
    lax = check_notebook(path, rerun=True, timeout=60, lax=True).findings
    assert [(f.kind, f.cell) for f in lax] == [("output-mismatch", 1), ("output-mismatch", 2)]


def test_an_nbval_sanitize_file_is_applied_before_comparing(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "san.ipynb",
        [
            new_code_cell("import os\nprint('pid', os.getpid())", execution_count=1, outputs=_out("pid 1\n"),
                          metadata={"tags": ["parameters"]}),
        ],
    )  # fmt: skip
    assert [f.kind for f in check_notebook(path, rerun=True, timeout=60).findings] == [
        "output-mismatch"
    ]
    rules = tmp_path / "sanitize.cfg"
    rules.write_text("[process ids]\nregex: pid \\d+\nreplace: PID\n")
    assert check_notebook(path, rerun=True, timeout=60, sanitize_with=rules).findings == []
    bad = tmp_path / "bad.cfg"
    bad.write_text("regex: (unclosed\nreplace: x\n")
    with pytest.raises(ConfigurationError, match=r"invalid regex '\(unclosed'"):
        check_notebook(path, rerun=True, sanitize_with=bad)


def test_no_parameters_cell_is_a_warning_unless_strict(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "plain.ipynb",
        [new_code_cell("print(1)", execution_count=1, outputs=_out("1\n"))],
    )
    report = check_notebook(path)
    assert [(f.kind, f.severity) for f in report.findings] == [("no-parameters", "warning")]
    assert report.ok
    assert not check_notebook(path, strict=True).ok
    runner = CliRunner()
    res = runner.invoke(cli, ["notebook", "check", str(path)])
    assert res.exit_code == 0, res.output
    assert "warning: no-parameters" in res.output
    assert res.output.rstrip().endswith(": ok")
    strict = runner.invoke(cli, ["notebook", "check", str(path), "--strict", "--json"])
    assert strict.exit_code == 1
    assert json.loads(strict.output)["ok"] is False


def test_an_undeclared_kiln_import_names_the_kiln_ml_distribution(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\ndependencies = ["numpy>=1"]\n'
    )
    path = _save(
        tmp_path / "k.ipynb", [new_code_cell("import kiln", metadata={"tags": ["parameters"]})]
    )
    found = check_notebook(path).findings
    assert [f.kind for f in found] == ["undeclared-import"]
    assert "(from kiln-ml)" in found[0].message
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\ndependencies = ["kiln-ml[serve]>=0.1"]\n'
    )
    assert check_notebook(path).findings == []
