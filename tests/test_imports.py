"""Cheap imports: `import kiln` and `kiln --help` load none of the heavy libraries.

Each check runs in a fresh interpreter, since this test process has imported them all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("pandas", "sklearn", "sqlalchemy", "numpy", "plotly", "ray", "alembic", "pyarrow")
MARK = "KILN-IMPORTED:"


@pytest.fixture
def subprocess_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """This test's settings plus a bytecode cache outside the virtualenv (for speed only)."""
    cache = (
        request.config.cache.mkdir("kiln-pycache")
        if request.config.cache is not None
        else tmp_path_factory.getbasetemp() / "pycache"
    )
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def loaded_after(code: str, env: dict[str, str]) -> tuple[set[str], str]:
    """Run `code` in a fresh interpreter; return the heavy and kiln modules it loaded, and stdout.

    The modules are printed on a last line after `code`, which may end in `sys.exit(0)`.
    """
    body = textwrap.indent(textwrap.dedent(code).strip(), "    ")
    script = (
        "import json, sys\n"
        "try:\n"
        f"{body}\n"
        "except SystemExit as exc:\n"
        "    if exc.code not in (0, None):\n"
        "        raise\n"
        f"heavy = set({HEAVY!r})\n"
        "found = [m for m in sys.modules if m.split('.')[0] in heavy or m.startswith('kiln.')]\n"
        f"print({MARK!r} + json.dumps(sorted(found)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output, _, last = done.stdout.rstrip("\n").rpartition("\n")
    assert last.startswith(MARK), done.stdout
    return set(json.loads(last[len(MARK) :])), output


# Every package under src/kiln (a new one must be reachable too).
SUBPACKAGES = tuple(
    sorted(
        p.name
        for p in (Path(__file__).resolve().parents[1] / "src" / "kiln").iterdir()
        if (p / "__init__.py").exists() and not p.name.startswith("_")
    )
)


def heavy(found: set[str]) -> list[str]:
    """The heavy top-level packages among `found`."""
    return sorted({m.split(".")[0] for m in found} & set(HEAVY))


def test_import_kiln_loads_no_heavy_library(subprocess_env: dict[str, str]) -> None:
    found, _ = loaded_after(
        """
        import kiln
        assert kiln.__version__ and kiln.KilnError and "start_run" in dir(kiln)
        """,
        subprocess_env,
    )

    assert heavy(found) == []
    assert "kiln.tracking" not in found  # public names load on first use


@pytest.mark.slow
def test_kiln_help_loads_no_heavy_library_and_no_command_module(
    subprocess_env: dict[str, str],
) -> None:
    found, out = loaded_after(
        """
        from kiln.cli import main
        sys.argv = ["kiln", "--help"]
        sys.exit(main())
        """,
        subprocess_env,
    )

    assert "Commands:" in out
    assert "experiments" in out
    assert heavy(found) == []
    assert not found & {"kiln.cli.runs", "kiln.cli.experiments", "kiln.cli.store"}


@pytest.mark.slow
def test_a_command_group_help_loads_no_heavy_library(subprocess_env: dict[str, str]) -> None:
    found, out = loaded_after(
        """
        from kiln.cli import main
        sys.argv = ["kiln", "runs", "--help"]
        sys.exit(main())
        """,
        subprocess_env,
    )

    assert "compare" in out
    assert heavy(found) == []


@pytest.mark.slow
def test_kiln_runs_list_loads_no_pandas_or_sklearn(subprocess_env: dict[str, str]) -> None:
    found, out = loaded_after(
        """
        from kiln.cli import main
        sys.argv = ["kiln", "runs", "list"]
        sys.exit(main())
        """,
        subprocess_env,
    )

    assert "No runs found" in out
    assert "sqlalchemy" in heavy(found)  # reading the store needs it; that is allowed
    assert not set(heavy(found)) & {"pandas", "sklearn", "plotly", "ray"}


def test_every_subpackage_is_an_attribute_after_a_bare_import(
    subprocess_env: dict[str, str],
) -> None:
    # Issue 15: kiln.models, kiln.tracking, kiln.registry, kiln.pipeline, kiln.notebooks and
    # kiln.serving raised AttributeError after `import kiln`; only some were lazily reachable.
    found, output = loaded_after(
        f"""
        import kiln
        names = {SUBPACKAGES!r}
        listed = set(dir(kiln))
        before = set(sys.modules)
        for name in names:
            assert name in listed, name
        print(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
        for name in names:
            module = getattr(kiln, name)
            assert module.__name__ == "kiln." + name, module
        """,
        subprocess_env,
    )

    assert output.strip() == "[]"  # listing them loaded nothing heavy
    assert {f"kiln.{name}" for name in SUBPACKAGES} <= found
