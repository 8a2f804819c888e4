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


def test_readme_shows_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
    assert "pip install kiln-ml" in text


@pytest.mark.slow
def test_readme_tour_runs(tmp_path: Path) -> None:
    blocks = [(lang, code) for lang, code in _blocks() if lang in ("python", "bash")]
    assert len(blocks) >= 4, "the README tour lost its runnable blocks"
    env = dict(os.environ)
    env["KILN_HOME"] = str(tmp_path / ".kiln")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # pip lines install the package users would; here it is already installed.
    for i, (lang, code) in enumerate(blocks):
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
