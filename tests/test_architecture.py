"""The import contract (pyproject.toml, `[tool.importlinter]`) holds, and it catches the
violations it exists for: an upward import, a cycle inside a package, a private module
read from another package, and library code importing the root `kiln` facade.

Each violation is planted in a copy of the source tree, never in the real one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason="import-linter is not installed (make env-dev installs it)"
)


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    """Run the project's contract against the `kiln` package found in `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=src,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(
        ROOT / "src" / "kiln", src / "kiln", ignore=shutil.ignore_patterns("__pycache__")
    )
    return src


def test_the_source_tree_keeps_the_contract(tree: Path) -> None:
    done = lint(tree)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


def planted(statement: str) -> str:
    """A function-local import: the contract counts those too."""
    return f"def _planted() -> None:\n    {statement}  # noqa\n"


# kind -> ({module: code appended}, text the report must contain)
VIOLATIONS: dict[str, tuple[dict[str, str], str]] = {
    # A lower package reaching up breaks the layers.
    "upward": (
        {"kiln/store/_engine.py": planted("from kiln.serving import prediction_log")},
        "kiln.store is not allowed to import kiln.serving",
    ),
    # Two modules of one package importing each other.
    "cycle": (
        {
            "kiln/artifacts/_paths.py": planted("from kiln.artifacts import _cas"),
            "kiln/artifacts/_cas.py": planted("from kiln.artifacts import _paths"),
        },
        "No cycles are allowed in kiln.artifacts",
    ),
    # Another package's private module.
    "private": (
        {"kiln/pipeline/_graph.py": planted("from kiln.tracking import _fluent")},
        "kiln.pipeline._graph -> kiln.tracking._fluent",
    ),
    # The root facade from library code.
    "facade": (
        {"kiln/tracking/_records.py": planted("import kiln")},
        "kiln.tracking._records -> kiln",
    ),
}


@pytest.mark.parametrize("kind", sorted(VIOLATIONS))
def test_a_planted_violation_breaks_the_contract(kind: str, tree: Path, tmp_path: Path) -> None:
    copy = tmp_path / "src"
    shutil.copytree(tree, copy)
    plants, expected = VIOLATIONS[kind]
    for module, code in plants.items():
        target = copy / module
        target.write_text(target.read_text() + "\n\n" + code)

    done = lint(copy)

    assert done.returncode != 0, done.stdout
    assert expected in done.stdout, done.stdout
