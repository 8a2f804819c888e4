"""`kiln init`: the generated project validates, runs and tests; `--update` merges three-way.

Everything runs as the user would: the `kiln` command in a subprocess, the project's own
tools (ruff, check-jsonschema, hadolint, pytest) from this venv on the generated files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from kiln.project import TEMPLATE_VERSION, init
from kiln.project._template import resolve_template

BIN = Path(sys.executable).parent
KILN = str(BIN / "kiln")
TEMPLATE = Path(resolve_template("default")[0])


def _env(project: Path | None = None) -> dict[str, str]:
    """The environment of a user's shell: no test settings; the project's src importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "KILN_", "COV_")) and k != "PYTHONPATH"
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if project is not None:
        env["PYTHONPATH"] = str(project / "src")
        env["KILN_HOME"] = str(project / ".kiln")
    return env


def _run(
    args: list[str], cwd: Path, *, project: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=_env(project), capture_output=True, text=True, timeout=timeout
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"{done.args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kiln init demo` in an empty folder, once for the module's checks."""
    where = tmp_path_factory.mktemp("init")
    start = time.perf_counter()
    out = _ok(_run([KILN, "init", "demo"], where))
    seconds = time.perf_counter() - start
    root = where / "demo"
    assert f"Created {root}" in out
    assert seconds < 60, f"kiln init took {seconds:.1f}s"  # a first wheel build included
    return root


def test_init_creates_the_project_in_a_git_repo(project: Path) -> None:
    for name in (
        "pyproject.toml",
        "params.yaml",
        "Makefile",
        "Dockerfile",
        "README.md",
        ".pre-commit-config.yaml",
        ".github/workflows/ci.yml",
        "src/demo/pipeline.py",
        "src/demo/model.py",
        "notebooks/explore.ipynb",
        "notebooks/explore.py",
        "tests/test_model.py",
        "tests/test_notebooks.py",
    ):
        assert (project / name).is_file(), name
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_commit"] == TEMPLATE_VERSION
    assert answers["project_name"] == "demo"
    assert answers["package_name"] == "demo"
    log = _ok(_run(["git", "log", "--format=%s"], project)).splitlines()
    assert log == [f"Create demo from kiln's project template {TEMPLATE_VERSION}"]
    assert _ok(_run(["git", "status", "--porcelain"], project)) == ""
    # kiln-ml comes from a local wheel until it is on a public index, and the README says so
    wheels = sorted((project / "wheels").glob("kiln_ml-*.whl"))
    assert len(wheels) == 1
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert f'kiln-ml = {{ path = "wheels/{wheels[0].name}" }}' in pyproject
    assert "not on a public package index" in (project / "README.md").read_text()
    # uv.lock from `uv lock` (the package index); without uv or an index, `make setup` writes it
    lock = project / "uv.lock"
    if lock.is_file():
        assert 'name = "kiln-ml"' in lock.read_text(encoding="utf-8")
        assert "uv.lock" in _ok(_run(["git", "ls-files"], project)).split()
    makefile = (project / "Makefile").read_text(encoding="utf-8")
    for target in ("setup", "test", "run", "serve", "monitor", "docs"):
        assert re.search(rf"^{target}:", makefile, re.M), target
        assert re.search(rf"^{target} = ", pyproject, re.M) or target == "setup", target


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_serve_takes_another_port_and_registers_only_a_new_model(project: Path) -> None:
    # kiln's "port 8000 is in use" error says to choose another port with --port: with
    # make, that is PORT=
    def serve_line(*args: str) -> str:
        dry = _ok(_run(["make", "-n", "serve", "RUN=", *args], project))
        [line] = [x for x in dry.splitlines() if x.startswith("kiln serve ")]
        return line

    assert serve_line().endswith(" --port 8000 --log-rate 1")
    assert serve_line("PORT=8001").endswith(" --port 8001 --log-rate 1")
    assert "make serve PORT=8001" in (project / "README.md").read_text(encoding="utf-8")
    # every `make serve` registers the newest trained model, a new version only when new
    dry = _ok(_run(["make", "-n", "register", "RUN="], project))
    assert "kiln models register $run demo --if-changed" in dry, dry
    pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "kiln models register $run demo --if-changed" in pyproject


def test_ci_workflow_is_valid_and_has_every_step(project: Path) -> None:
    workflow = project / ".github" / "workflows" / "ci.yml"
    _ok(
        _run(
            [
                str(BIN / "check-jsonschema"),
                "--builtin-schema",
                "vendor.github-workflows",
                str(workflow),
            ],
            project,
        )
    )
    steps = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"]["build"]["steps"]
    commands = "\n".join(str(step.get("run", "")) for step in steps)
    for needed in (
        "ruff check",
        "pytest",
        "kiln notebook check",
        "kiln run -p load.sample=",
        "pip-audit",
        "make package",
    ):
        assert needed in commands, needed
    assert "kiln package" in (project / "Makefile").read_text(encoding="utf-8")


def test_dockerfile_passes_hadolint(project: Path) -> None:
    dockerfile = project / "Dockerfile"
    _ok(_run([str(BIN / "hadolint"), str(dockerfile)], project))
    text = dockerfile.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^USER 10001$", text, re.M)
    assert "HEALTHCHECK" in text
    assert "/health" in text


def test_generated_project_lints_runs_and_passes_its_tests(project: Path) -> None:
    _ok(_run([str(BIN / "ruff"), "check", "src", "tests", "notebooks"], project))
    _ok(_run([str(BIN / "ruff"), "format", "--check", "src", "tests", "notebooks"], project))
    _ok(_run([KILN, "notebook", "check", "notebooks/explore.ipynb"], project, project=project))
    first = _ok(_run([KILN, "run"], project, project=project))
    for step in ("load", "preprocess", "train", "evaluate"):
        assert re.search(rf"done\s+{step}", first), first
    again = _ok(_run([KILN, "run"], project, project=project))
    assert "Nothing changed" in again
    tests = _ok(
        _run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"], project, project=project)
    )
    assert re.search(r"\b6 passed\b", tests), tests


def _template_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "template"
    shutil.copytree(TEMPLATE, copy)
    return copy


def _bump(template: Path, version: str, file: str, old: str, new: str) -> None:
    (template / "VERSION").write_text(version + "\n", encoding="utf-8")
    path = template / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _edit_and_commit(project: Path, file: str, old: str, new: str) -> None:
    path = project / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    _ok(_run(["git", "commit", "-q", "-am", f"edit {file}"], project))


@pytest.fixture
def made(tmp_path: Path, project: Path) -> tuple[Path, Path]:
    """A project made from a copy of kiln's template (which the test then changes)."""
    template = _template_copy(tmp_path)
    wheel = next((project / "wheels").glob("kiln_ml-*.whl"))
    args = [
        KILN,
        "init",
        "app",
        "--template",
        str(template),
        "--kiln-wheel",
        str(wheel),
        "--no-lock",
    ]
    _ok(_run(args, tmp_path))
    return template, tmp_path / "app"


def test_update_merges_template_changes_and_keeps_local_edits(made: tuple[Path, Path]) -> None:
    template, app = made
    _edit_and_commit(app, "params.yaml", "  C: 1.0", "  C: 0.5")  # the user's edit
    _bump(template, "1.1.0", "params.yaml.jinja", "  test_size: 0.25", "  test_size: 0.2")
    _bump(
        template,
        "1.1.0",
        ".github/workflows/ci.yml.jinja",
        "timeout-minutes: 30",
        "timeout-minutes: 20",
    )
    out = _ok(_run([KILN, "init", "--update", "--template", str(template)], app))
    assert "from template 1.0.0 to 1.1.0" in out
    params = (app / "params.yaml").read_text(encoding="utf-8")
    assert "  C: 0.5" in params
    assert "  test_size: 0.2\n" in params
    assert "<<<<<<<" not in params
    assert "timeout-minutes: 20" in (app / ".github/workflows/ci.yml").read_text()
    answers = yaml.safe_load((app / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["_commit"] == "1.1.0"
    changed = _ok(_run(["git", "diff", "--name-only"], app)).split()
    assert sorted(changed) == [".copier-answers.yml", ".github/workflows/ci.yml", "params.yaml"]
    same = _ok(_run([KILN, "init", "--update", "--template", str(template)], app))
    assert "at template version 1.1.0 already" in same
    # a newer version never merges into uncommitted work (here: the last update's)
    (template / "VERSION").write_text("1.2.0\n", encoding="utf-8")
    dirty = _run([KILN, "init", "--update", "--template", str(template)], app)
    assert dirty.returncode == 1
    assert "uncommitted changes" in dirty.stderr
    _ok(_run(["git", "commit", "-q", "-am", "template 1.1.0"], app))
    out = _ok(_run([KILN, "init", "--update", "--template", str(template), "--json"], app))
    assert '"new_version": "1.2.0"' in out


def test_update_reports_a_conflict_when_both_changed_a_line(made: tuple[Path, Path]) -> None:
    template, app = made
    _edit_and_commit(app, "params.yaml", "  C: 1.0", "  C: 0.3")
    _bump(template, "1.1.0", "params.yaml.jinja", "  C: 1.0", "  C: 2.0")
    _bump(template, "1.1.0", "Makefile.jinja", "PORT ?= 8000", "PORT ?= 8080")  # merges cleanly
    done = _run([KILN, "init", "--update", "--template", str(template)], app)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 conflict(s)" in done.stderr
    assert "  params.yaml" in done.stderr
    assert "C params.yaml" in done.stdout
    assert "M Makefile" in done.stdout
    params = (app / "params.yaml").read_text(encoding="utf-8")
    assert re.search(r"^<{7}.*\n  C: 0\.3\n={7}\n  C: 2\.0\n>{7}", params, re.M), params
    assert "PORT ?= 8080" in (app / "Makefile").read_text(encoding="utf-8")


def test_init_refuses_a_non_empty_folder_and_a_bad_name(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine", encoding="utf-8")
    done = _run([KILN, "init", "taken"], tmp_path)
    assert done.returncode == 1
    assert "already exists and is not empty" in done.stderr
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    for bad, why in (("9lives", "cannot name a project"), ("class", "Python keyword")):
        done = _run([KILN, "init", bad], tmp_path)
        assert done.returncode == 1
        assert why in done.stderr, done.stderr
        assert not (tmp_path / bad).exists()


def test_update_without_an_answers_file_says_what_is_wrong(tmp_path: Path) -> None:
    done = _run([KILN, "init", "--update"], tmp_path)
    assert done.returncode == 1
    assert "has no .copier-answers.yml" in done.stderr
    assert "kiln init" in done.stderr


def test_init_without_copier_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['copier'] = None\n"  # as if Copier were not installed
        "from kiln.project import init\n"
        "from kiln._exceptions import MissingExtraError\n"
        "try:\n    init('demo', path=sys.argv[1])\n"
        "except MissingExtraError as exc:\n    print(exc)\n"
    )
    out = _ok(_run([sys.executable, "-c", code, str(tmp_path / "demo")], tmp_path))
    assert "pip install 'kiln-ml[init]'" in out
    assert "kiln init" in out
    assert not (tmp_path / "demo").exists()


def test_init_without_git_makes_no_repository(tmp_path: Path, project: Path) -> None:
    wheel = next((project / "wheels").glob("kiln_ml-*.whl"))
    root = init("plain", path=tmp_path / "plain", git=False, kiln_wheel=wheel, lock=False)
    assert (root / "pyproject.toml").is_file()
    assert not (root / ".git").exists()


def test_template_version_and_the_wheel_ships_the_template(tmp_path: Path) -> None:
    assert (TEMPLATE / "VERSION").read_text(encoding="utf-8").strip() == TEMPLATE_VERSION
    root = Path(__file__).resolve().parents[1]
    uv = next(
        (str(p) for p in (BIN / "uv", root / ".tools" / "bin" / "uv") if p.exists()),
        shutil.which("uv") or "uv",
    )
    _ok(_run([uv, "build", "--wheel", "--out-dir", str(tmp_path), str(root)], root))
    names = zipfile.ZipFile(next(tmp_path.glob("kiln_ml-*.whl"))).namelist()
    shipped = {n.split("template/default/", 1)[1] for n in names if "template/default/" in n}
    expected = {str(p.relative_to(TEMPLATE)) for p in TEMPLATE.rglob("*") if p.is_file()}
    assert shipped == expected


def test_a_broken_template_names_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    template = _template_copy(tmp_path)
    (template / "broken.txt.jinja").write_text("{{ oops\n", encoding="utf-8")
    done = _run([KILN, "init", "app", "--template", str(template), "--no-lock"], tmp_path)
    assert done.returncode == 1
    assert "could not be rendered in broken.txt.jinja, line 1" in done.stderr
    assert not (tmp_path / "app").exists()


def test_update_moves_the_project_to_another_kiln_wheel(
    made: tuple[Path, Path], tmp_path: Path
) -> None:
    # a newer kiln ships another wheel: same template version, new answers
    template, app = made
    old = next((app / "wheels").glob("kiln_ml-*.whl"))
    newer = tmp_path / old.name.replace("-py3-", "-1-py3-")  # a build tag: another file
    shutil.copyfile(old, newer)
    args = [KILN, "init", "--update", "--template", str(template), "--kiln-wheel", str(newer)]
    out = _ok(_run(args, app))
    assert "from template 1.0.0 to 1.0.0" in out
    assert sorted(p.name for p in (app / "wheels").iterdir()) == [newer.name]
    pyproject = (app / "pyproject.toml").read_text(encoding="utf-8")
    assert f'path = "wheels/{newer.name}"' in pyproject
    answers = yaml.safe_load((app / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["kiln_wheel"] == newer.name
