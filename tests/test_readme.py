"""The README's tour runs as written: its python and bash blocks, in order, in one folder.

`console` blocks (the set-up commands `make demo` / `make test`, and the PostgreSQL
example that needs a team server) are run by CI itself (.ci/run) or are illustrations;
`text` blocks are output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text(encoding="utf-8"))]


def test_readme_shows_the_two_setup_commands_and_an_install_that_works_today() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
    # kiln-ml is on no public index yet: the README installs the wheel `make dist` builds
    assert "pip install kiln-ml " not in text
    assert "make dist" in text
    assert 'pip install "$(ls dist/kiln_ml-*.whl)' in text
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^dist: .*\n\t\$\(UV\) build --wheel --out-dir dist$", makefile, re.M)


def _extras_the_tour_uses() -> set[str]:
    text = README.read_text(encoding="utf-8")
    used = {"sklearn"}  # the demo itself
    if "kiln serve" in text or "kiln predict" in text:
        used.add("serve")
    if "kiln notebook" in text:
        used.add("notebooks")
    if "kiln.evaluate" in text or "kiln evaluate" in text:
        used.add("evaluate")
    if "kiln.monitor" in text or "kiln monitor" in text:
        used.add("monitor")
    if "kiln package" in text or "kiln runs reproduce" in text or "kiln init" in text:
        used.add("reproduce")  # uv: kiln-ml's wheel beside the model's, envs, init's tasks
    if "pytest" in text:
        used.add("testing")  # the kiln_notebook fixture
    if "kiln init" in text:
        used.add("init")
    return used


def test_the_demo_env_has_the_extras_the_tour_uses() -> None:
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    env_target = re.search(r"^env: .*\n\t(.*)$", makefile, re.M)
    assert env_target is not None
    extras = set(re.findall(r"--extra (\w+)", env_target[1]))
    used = _extras_the_tour_uses()
    assert used <= extras, f"make demo's env lacks {sorted(used - extras)}"


def test_the_wheel_install_the_tour_names_has_the_extras_it_uses() -> None:
    """The tour's other way in, the wheel with the extras it names: those extras (and
    what `[all]` stands for) cover every extra the tour uses."""
    import tomllib

    text = README.read_text(encoding="utf-8")
    named = re.search(
        r'To follow it yourself.*?pip install "\$\(ls dist/kiln_ml-\*\.whl\)\[([\w,]+)\]"',
        text,
        re.S,
    )
    assert named is not None, "the tour no longer says which wheel install it needs"
    project = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))
    optional = project["project"]["optional-dependencies"]
    extras: set[str] = set()
    for extra in named[1].split(","):
        extras.add(extra)
        for dep in optional[extra]:
            inner = re.fullmatch(r"kiln-ml\[([\w,]+)\]", dep)
            if inner:
                extras.update(inner[1].split(","))
    used = _extras_the_tour_uses()
    assert used <= extras, f"the tour's wheel install lacks {sorted(used - extras)}"


_PROMISE = re.compile(r'#\s*"([^"]+)"')


@pytest.mark.slow
def test_readme_tour_runs(tmp_path: Path) -> None:
    """Every python and bash block runs, in order, in one folder, without KILN_HOME (as a
    user runs them); a `# "..."` comment is output the block must print; a text block
    starting with `$ command` is a transcript the command must reproduce."""
    blocks = [(lang, code) for lang, code in _blocks() if lang in ("python", "bash", "text")]
    assert len(blocks) >= 4, "the README tour lost its runnable blocks"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["COLUMNS"] = "200"
    assert not any((p / ".git").exists() for p in (tmp_path, *tmp_path.parents))
    transcripts = 0
    # pip lines install the package users would; here it is already installed.
    for i, (lang, code) in enumerate(blocks):
        if lang == "text":
            if not code.startswith("$ "):
                continue
            command, _, expected = code.partition("\n")
            proc = subprocess.run(
                ["bash", "-c", command[2:]], cwd=tmp_path, env=env, capture_output=True,
                text=True, timeout=120,
            )  # fmt: skip
            got = [ln.rstrip() for ln in (proc.stdout + proc.stderr).splitlines()]
            assert got == [ln.rstrip() for ln in expected.splitlines()], (
                f"README transcript {i} differs:\n{code}\n--- got\n" + "\n".join(got)
            )
            transcripts += 1
            continue
        if lang == "bash":
            code = "\n".join(
                line for line in code.splitlines() if not line.startswith("pip install")
            )
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        else:
            cmd = [sys.executable, "-c", code]
        proc = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, (
            f"README block {i} ({lang}) failed:\n{code}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
        for promise in _PROMISE.findall(code):
            assert promise in proc.stdout + proc.stderr, (
                f"README block {i} promises {promise!r}, which it did not print:\n{code}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
    assert transcripts >= 1
    # one home for everything: the store and the pipeline state in the first .kiln
    assert not (tmp_path / "shop" / ".kiln").exists()
    assert (tmp_path / ".kiln" / "kiln.db").exists()
