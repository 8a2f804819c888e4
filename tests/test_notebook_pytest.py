"""The `kiln_notebook` pytest fixture, run by a real pytest on real notebooks (pytester)."""

from __future__ import annotations

import pytest

from nbutil import write_nb

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

TRAIN = (
    "alpha = 1.0\nrows = 10",
    "import kiln\nscore = 1 - alpha / 10\nkiln.log_metric('loss', alpha * 2)",
    "kiln.record('score', score)\nkiln.record('rows', rows)",
)
BROKEN = ("alpha = 1.0", "x = alpha * 2", "def helper(v):\n    return v / 0", "helper(x)")


def test_a_test_reads_recorded_values_and_a_failing_cell_fails_clearly(
    pytester: pytest.Pytester,
) -> None:
    write_nb(pytester.path / "train.ipynb", *TRAIN)
    write_nb(pytester.path / "broken.ipynb", *BROKEN)
    pytester.makepyfile(
        test_nbs="""
        def test_train(kiln_notebook):
            res = kiln_notebook("train.ipynb", alpha=0.5)
            assert res["score"] > 0.9
            assert res["rows"] == 10
            assert res.metrics["loss"] == 1.0
            assert res.params["alpha"] == "0.5"
            assert dict(res) == {"rows": 10, "score": 0.95}

        def test_train_fails_its_own_assertion(kiln_notebook):
            res = kiln_notebook("train.ipynb", {"alpha": 5.0})
            assert res["score"] > 0.8

        def test_broken(kiln_notebook):
            kiln_notebook("broken.ipynb")

        def test_misspelled(kiln_notebook):
            kiln_notebook("train.ipynb", alpah=0.1)
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=3)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*test_train_fails_its_own_assertion*",
            "*assert 0.5 > 0.8*",
        ]
    )
    broken = out[out.index("_ test_broken _") : out.index("_ test_misspelled _")]
    assert "Notebook broken.ipynb failed." in broken
    assert "code cell 3 (counting code cells of the original notebook from 0)" in broken
    assert "raised ZeroDivisionError: float division by zero" in broken
    assert "    helper(x)" in broken  # the cell's source
    assert "return v / 0" in broken  # the notebook's traceback, into the helper
    assert "_run.py" not in broken  # and no kiln internals
    assert "During handling" not in broken
    assert broken.count("Cell source:") == 1
    misspelled = out[out.index("_ test_misspelled _") :]
    assert "Parameter 'alpah' is not defined" in misspelled
    assert "Did you mean 'alpha'?" in misspelled


def test_a_missing_notebook_or_value_says_what_was_looked_for(pytester: pytest.Pytester) -> None:
    write_nb(pytester.path / "train.ipynb", *TRAIN)
    pytester.makepyfile(
        test_missing="""
        import pytest

        def test_no_file(kiln_notebook):
            kiln_notebook("nope.ipynb")

        def test_no_value(kiln_notebook):
            res = kiln_notebook("train.ipynb")
            with pytest.raises(KeyError, match="recorded \\\\['rows', 'score'\\\\]"):
                res["accuracy"]
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*kiln_notebook: no notebook 'nope.ipynb'; looked for*"])
