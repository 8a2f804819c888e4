"""The guides in docs/ work as written, link to each other, and build into one site.

Every guide's examples run, as the README's do (tests/test_readme.py), one folder per
guide, without KILN_HOME (as a user runs them):

- `python` and `bash` blocks run in order, each in its own process, in one empty folder;
  a `# "..."` comment is output the block must print.
- A `python` block whose first line is `# FILE.py` (or `# FILE.py: ...`) is that file's
  content: it is written to FILE.py for the blocks after it, not run.
- `console`, `text`, `json`, `yaml` blocks are illustrations or output. So is a block
  right after an HTML comment `<!-- not run: why -->`, which must say why.
- The team guide's PostgreSQL database (`.../kiln` on 127.0.0.1:5432) is a fresh empty
  database here; without a PostgreSQL server that guide is skipped, saying so (failed
  under KILN_REQUIRE_SERVICES=1), as every PostgreSQL test is.

Every CLI command's `--help` is in docs/cli.md: tests/test_cli_settings.py checks that
docs/cli.md is exactly what `docs/build.py --write-cli` generates from the commands.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conftest import make_empty_pg_database

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->\s*$", re.S)
FILE_BLOCK = re.compile(r"\A# ([\w./-]+\.py)(?::.*)?\n")
PROMISE = re.compile(r'#\s*"([^"]+)"')
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
TEAM_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/kiln"
# Pages made by docs/build.py --write-cli, and the history: not guides.
NOT_GUIDES = {"index.md", "cli.md", "configuration.md", "changelog.md"}


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def _blocks(page: Path) -> list[tuple[str, str, str | None]]:
    """(language, code, why it is not run) of each fenced block of a page."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in BLOCK.finditer(text):
        before = text[: m.start()].rstrip()
        why = NOT_RUN.search(before[-300:])
        out.append((m.group(1), m.group(2), why.group(1) if why else None))
    return out


def _runnable(page: Path) -> list[tuple[str, str]]:
    return [
        (lang, code)
        for lang, code, why in _blocks(page)
        if lang in ("python", "bash") and why is None
    ]


RUNNABLE = [p.name for p in _pages() if _runnable(p)]


def test_the_guides_have_examples_that_run() -> None:
    guides = {p.name for p in _pages()} - NOT_GUIDES
    assert guides - set(RUNNABLE) == set(), "a guide with no runnable example"
    for page in _pages():
        for lang, _code, why in _blocks(page):
            if why is not None:
                assert len(why) > 10, f"{page.name}: a `not run` block must say why"
            assert lang, f"{page.name}: a fenced block without a language"


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNNABLE)
def test_guide_examples_run(name: str, tmp_path: Path) -> None:
    page = DOCS / name
    blocks = _runnable(page)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["COLUMNS"] = "200"
    env["KILN_CAPTURE_PACKAGES"] = "0"  # speed only: no package list on each run
    assert not any((p / ".git").exists() for p in (tmp_path, *tmp_path.parents))
    database = None
    if any(TEAM_DB in code for _, code in blocks):
        database = make_empty_pg_database()  # skips without a server, saying why
    for i, (lang, code) in enumerate(blocks):
        if database is not None:
            code = code.replace(TEAM_DB, database)
        written = FILE_BLOCK.match(code) if lang == "python" else None
        if written:
            target = tmp_path / written.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
            continue
        if lang == "bash":
            code = "\n".join(ln for ln in code.splitlines() if not ln.startswith("pip install"))
            cmd = ["bash", "-euo", "pipefail", "-c", code]
        else:
            cmd = [sys.executable, "-c", code]
        proc = _run_block(cmd, tmp_path, env)
        assert proc.returncode == 0, (
            f"{name} block {i} ({lang}) failed:\n{code}\n--- stdout\n{proc.stdout}"
            f"\n--- stderr\n{proc.stderr}"
        )
        for promise in PROMISE.findall(code):
            assert promise in proc.stdout + proc.stderr, (
                f"{name} block {i} promises {promise!r}, which it did not print:\n{code}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )


def _run_block(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one block in a process group of its own: whatever it started in the background
    (a server it did not stop) is killed with it, and it may take at most 180 s."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"a block ran over 180 s:\n{' '.join(cmd)}\n{out}\n{err}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _docs_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kiln_docs_build", DOCS / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_guide_is_linked_from_the_index() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = {target.split("#")[0] for target in LINK.findall(index)}
    missing = {p.name for p in _pages()} - {"index.md"} - linked
    assert missing == set(), f"docs/index.md does not link {sorted(missing)}"


def test_every_guide_links_to_the_cli_and_the_api_reference() -> None:
    for page in _pages():
        if page.name in NOT_GUIDES:
            continue
        targets = LINK.findall(page.read_text(encoding="utf-8"))
        assert any(t.startswith("api/") for t in targets), f"{page.name}: no API link"
        if page.name != "model-format.md":
            assert any(t.startswith("cli.md") for t in targets), f"{page.name}: no cli.md link"


def test_every_relative_link_in_the_docs_resolves() -> None:
    build = _docs_build()
    broken = []
    for page in _pages():
        anchors_by_page = {}
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            if path.startswith("api/"):
                # the API reference is built into the site: docs/build.py's module pages
                module = path.removeprefix("api/").removesuffix(".html").replace("/", ".")
                if module not in build.PUBLIC_MODULES:
                    broken.append(f"{page.name}: {target} (no such API page)")
                continue
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.name}: {target}")
                continue
            if anchor and resolved.suffix == ".md":
                if resolved not in anchors_by_page:
                    anchors_by_page[resolved] = build.heading_anchors(
                        resolved.read_text(encoding="utf-8")
                    )
                if anchor not in anchors_by_page[resolved]:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_the_site_builds_with_every_guide_and_working_links(tmp_path: Path) -> None:
    pytest.importorskip("pdoc")
    proc = subprocess.run(
        [sys.executable, str(DOCS / "build.py"), str(tmp_path / "site")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = tmp_path / "site"
    for page in _pages():
        html = site / page.with_suffix(".html").name
        assert html.exists(), f"{html.name} was not built"
    assert (site / "api" / "kiln.html").exists()
    broken = []
    for html in site.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert 'href="index.html"' in text, f"{html.name} has no navigation"
        for href in re.findall(r'href="([^"]+)"', text):
            if re.match(r"[a-z]+:|#", href):
                continue
            path, _, anchor = href.partition("#")
            target = (html.parent / path).resolve()
            if not target.exists():
                broken.append(f"{html.name}: {href}")
            elif anchor and f'id="{anchor}"' not in target.read_text(encoding="utf-8"):
                broken.append(f"{html.name}: {href} (no such anchor)")
    assert broken == []
    api = (site / "api" / "kiln.html").read_text(encoding="utf-8")
    assert "start_run" in api


def _command_lines(page: Path) -> list[str]:
    """The shell command lines of a page's console and bash blocks (continuations joined)."""
    lines = []
    for lang, code, _why in _blocks(page):
        if lang not in ("console", "bash"):
            continue
        code = code.replace("\\\n", " ")
        prompted = any(line.startswith("$ ") for line in code.splitlines())
        for line in code.splitlines():
            if prompted and not line.startswith("$ "):
                continue  # a transcript: the rest is output
            line = line.strip().removeprefix("$ ")
            for inner in re.findall(r"\$\(([^()]*)\)", line):  # kiln ... $(kiln runs list ...)
                lines.append(inner)
                line = line.replace(f"$({inner})", "ID")
            lines.extend(p.strip() for p in re.split(r"\s(?:\|\||&&|\||;)\s", line))
    return lines


def test_every_kiln_command_and_option_in_the_guides_exists() -> None:
    """A `kiln ...` line of a guide (or the README) names a command of docs/cli.md, with
    options it has: also in the illustrations, which are not run."""
    import shlex

    cli_md = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (kiln.*?)\n\n```text\n(.*?)^```", cli_md, re.S | re.M))
    wrong = []
    for page in [*_pages(), ROOT / "README.md"]:
        if page.name == "cli.md":
            continue
        for line in _command_lines(page):
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            while words and re.match(r"[A-Z_]+=", words[0]):
                words = words[1:]  # KILN_STORE=... kiln ...
            if not words or words[0] != "kiln":
                continue
            path, rest = ["kiln"], words[1:]
            if rest[:1] == ["--store"]:
                rest = rest[2:]
            while rest and " ".join([*path, rest[0]]) in sections:
                path.append(rest.pop(0))
            if len(path) == 1 and rest and not rest[0].startswith("-"):
                wrong.append(f"{page.name}: no command `kiln {rest[0]}` ({line})")
                continue
            help_text = sections[" ".join(path)]
            for word in rest:
                option = word.split("=", 1)[0]
                if re.fullmatch(r"--?[a-zA-Z][\w-]*", option) and not re.search(
                    rf"(^|[\s,]){re.escape(option)}([\s,=]|$)", help_text, re.M
                ):
                    wrong.append(f"{page.name}: `{' '.join(path)}` has no {option} ({line})")
    assert wrong == [], "\n".join(wrong)
