"""Every notebook execution stores an HTML page with the cell outputs, made in milliseconds."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pytest
from click.testing import CliRunner

import kiln
from kiln.cli import cli
from kiln.notebooks import render_html, run_grid
from nbutil import write_nb

pytestmark = pytest.mark.slow

# A 1x1 PNG, displayed by the notebook as an image output.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()

CELLS = (
    ("md", "# Report\n\nSome **bold** words and <script>alert(1)</script>"),
    "alpha = 1.0",
    "print('printed', alpha * 2)",
    "import sys\nprint('to stderr', file=sys.stderr)",
    "from IPython.display import HTML, display\n"
    f"display({{'image/png': {PNG!r}}}, raw=True)\n"
    "display(HTML('<table><tr><td>cell-html</td></tr></table>'))",
    "{'result': alpha + 40}",
)


def page(run_id: str, name: str) -> str:
    return kiln.get_client().read_artifact(run_id, f"notebook/{name}.html").decode("utf-8")


def test_each_execution_stores_a_page_with_the_outputs(tmp_path: Path) -> None:
    src = write_nb(tmp_path / "report.ipynb", *CELLS, parameters=1)
    result = kiln.run_notebook(src, {"alpha": 2.0})
    text = page(result.run_id, "report")  # there when the run returns: no waiting
    assert text.startswith("<!DOCTYPE html>")
    assert "<h1>Report</h1>" in text and "<strong>bold</strong>" in text  # noqa: PT018
    assert "<script>" not in text  # raw HTML in markdown is shown as text
    assert "printed 4.0" in text
    assert '<pre class="stderr">to stderr' in text
    assert f"data:image/png;base64,{PNG}" in text
    assert "<td>cell-html</td>" in text
    assert html.escape("{'result': 42.0}") in text
    assert "Out[6]:" in text
    assert "alpha = 2.0" in text  # the injected cell, and the parameters in the header
    assert "parameters: <code>alpha = 2.0</code>" in text
    assert render_html(result.run_id) == "notebook/report.html"


def test_a_failed_run_and_every_sweep_child_have_their_page(tmp_path: Path) -> None:
    src = write_nb(tmp_path / "f.ipynb", "x = 1", "print('before')", "1 / (x - 1)")
    failed = kiln.run_notebook(src, raise_on_error=False)
    text = page(failed.run_id, "f")
    assert "before" in text
    assert "ZeroDivisionError" in text
    assert "The notebook failed at code cell 2" in text  # the error, at the top
    sweep = run_grid(src, {"x": [2, 3]})
    for child in sweep.results:
        assert f"{1 / (child.parameters['x'] - 1)}" in page(child.run_id, "f")


def test_nbconvert_render_on_demand_from_the_cli(tmp_path: Path) -> None:
    src = write_nb(tmp_path / "n.ipynb", "x = 1", "print('hello', x)")
    result = kiln.run_notebook(src)
    out = CliRunner().invoke(
        cli, ["notebook", "html", result.run_id[:10], "--nbconvert", "-o", str(tmp_path / "p.html")]
    )
    assert out.exit_code == 0, out.output
    full = (tmp_path / "p.html").read_text()
    assert "hello 1" in full
    assert "jp-Notebook" in full  # nbconvert's lab template, not kiln's page
    paths = {a.path for a in kiln.get_run(result.run_id).artifacts}
    assert {"notebook/n.html", "notebook/n.nbconvert.html"} <= paths
