"""Reading commands as a data scientist meets them in a fresh project folder (issue 14).

Each test runs the real `kiln` command in a subprocess, in a new git repository, without
KILN_HOME or KILN_STORE: the default store is the one kiln finds from the working folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KILN = str(Path(sys.executable).parent / "kiln")

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A new, empty git repository: the user's project folder."""
    folder = tmp_path / "project"
    folder.mkdir()
    subprocess.run(["git", "init", "-q", str(folder)], check=True, timeout=30)
    return folder


@pytest.fixture
def env(subprocess_env: dict[str, str]) -> dict[str, str]:
    """The user's environment: no KILN_HOME, no KILN_STORE."""
    out = dict(subprocess_env)
    for var in ("KILN_HOME", "KILN_STORE", "KILN_ARTIFACTS"):
        out.pop(var, None)
    return out


def kiln(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KILN, *args], cwd=project, capture_output=True, text=True, env=env, timeout=120
    )


def python(project: Path, env: dict[str, str], code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_reading_commands_never_create_a_store_and_name_where_they_looked(
    project: Path, env: dict[str, str]
) -> None:
    where = str(project.resolve() / ".kiln" / "kiln.db")
    for args in (("runs", "list"), ("experiments", "list"), ("models", "list")):
        done = kiln(project, env, *args)
        assert done.returncode == 0, done.stderr
        assert "found: there is no kiln store at " + where in done.stdout, args
    done = kiln(project, env, "runs", "list", "--json")
    assert (done.returncode, done.stdout.strip()) == (0, "[]")
    done = kiln(project, env, "store", "info")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"No kiln store at {where} (the default")
    done = kiln(project, env, "store", "info", "--json")
    assert json.loads(done.stdout) == {
        "url": f"sqlite:///{where}",
        "backend": "sqlite",
        "exists": False,
    }
    for args in (("runs", "show", "latest"), ("store", "gc")):
        done = kiln(project, env, *args)
        assert done.returncode == 1, args
        assert done.stderr.startswith(f"Error: No kiln store at {where} (the default"), args
        assert "Traceback" not in done.stderr
    assert not (project / ".kiln").exists()
    assert sorted(p.name for p in project.iterdir()) == [".git"]


def test_nothing_found_names_the_store_it_read(project: Path, env: dict[str, str]) -> None:
    python(project, env, "import kiln\nwith kiln.start_run():\n    kiln.log_metric('acc', 0.9)")
    where = str(project.resolve() / ".kiln" / "kiln.db")
    done = kiln(project, env, "runs", "list", "-f", "metrics.acc > 5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"No runs found in {where}."
    done = kiln(project, env, "models", "list")
    assert done.stdout.startswith(f"No registered models found in {where}.")


def test_the_store_kiln_creates_is_ignored_by_git(project: Path, env: dict[str, str]) -> None:
    python(project, env, "import kiln\nwith kiln.start_run():\n    kiln.log_param('a', 1)")
    assert (project / ".kiln" / "kiln.db").is_file()
    assert (project / ".kiln" / ".gitignore").read_text().splitlines()[-1] == "*"
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project, capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert status.stdout == ""


def test_a_folder_the_user_made_for_the_store_is_left_as_it_is(
    project: Path, env: dict[str, str]
) -> None:
    mine = project / "stores"
    mine.mkdir()
    done = kiln(project, env, "--store", str(mine / "kiln.db"), "store", "migrate")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in mine.iterdir() if not p.name.startswith("kiln.db")) == []
    # A folder kiln creates for an explicit store gets one.
    done = kiln(project, env, "--store", str(project / "new" / "kiln.db"), "store", "migrate")
    assert done.returncode == 0, done.stderr
    assert (project / "new" / ".gitignore").is_file()
    assert os.path.getsize(project / "new" / "kiln.db") > 0


def test_a_filter_on_a_key_no_run_has_says_so_and_suggests_the_closest(
    project: Path, env: dict[str, str]
) -> None:
    python(
        project,
        env,
        "import kiln\nwith kiln.start_run():\n"
        "    kiln.log_metric('acc', 0.95)\n    kiln.log_param('model', 'rf')",
    )
    done = kiln(project, env, "runs", "list", "-f", "metrics.accc > 0.9")
    assert done.returncode == 0, done.stderr
    assert "No runs found in" in done.stdout
    assert done.stderr.startswith("Note: No searched run has metrics.accc,")
    assert "did you mean 'metrics.acc'?" in done.stderr
    done = kiln(project, env, "runs", "list", "-f", "params.modle = 'rf'")
    assert "No searched run has params.modle" in done.stderr
    assert "did you mean 'params.model'?" in done.stderr
    # A key that exists but matches nothing is no typo: no note.
    done = kiln(project, env, "runs", "list", "-f", "metrics.acc > 0.99")
    assert (done.returncode, done.stderr) == (0, "")


def test_the_12_character_id_a_table_shows_works_in_parent_id_filters(
    project: Path, env: dict[str, str]
) -> None:
    python(
        project,
        env,
        "import kiln\nwith kiln.start_run('grid'):\n"
        "    for i in range(2):\n"
        "        with kiln.start_run(f'child-{i}'):\n"
        "            kiln.log_metric('acc', i)\n"
        "with kiln.start_run('other'):\n    pass",
    )
    table = kiln(project, env, "runs", "list", "-f", "name = 'grid'").stdout
    short = next(w for w in table.split() if len(w) == 12 and w.isalnum())
    done = kiln(project, env, "runs", "list", "-f", f"parent_id = '{short}'")
    assert done.returncode == 0, done.stderr
    assert "child-0" in done.stdout
    assert "child-1" in done.stdout
    assert "other" not in done.stdout
    done = kiln(project, env, "runs", "list", "-f", f"id = '{short}'", "--ids")
    assert [line[:12] for line in done.stdout.split()] == [short]


def test_store_info_drops_by_what_store_gc_says_it_freed(
    project: Path, env: dict[str, str]
) -> None:
    python(
        project,
        env,
        "import os, kiln\nblob = os.urandom(300_000)\n"
        "for name in ('a', 'b'):\n"
        "    with kiln.start_run(name):\n"
        "        kiln.log_artifact(blob, name='model.bin')\n"  # one file, two runs
        "with kiln.start_run('c'):\n"
        "    kiln.log_artifact(os.urandom(200_000), name='model.bin')\n"
        # A process stopped between storing a file and recording it leaves it unreferenced.
        "sha, _ = kiln.get_client().artifacts.put_bytes(os.urandom(100_000))\n"
        "print(kiln.get_client().artifacts.location(sha))",
    )
    orphan = next(p for p in (project / ".kiln" / "artifacts").rglob("*") if p.is_file()
                  and p.stat().st_size == 100_000)  # fmt: skip
    os.utime(orphan, (1_000_000_000, 1_000_000_000))  # stored long ago: past gc's grace
    before = json.loads(kiln(project, env, "store", "info", "--json").stdout)
    assert before["artifact_bytes"] == 600_000
    ids = kiln(project, env, "runs", "list", "-f", "name in ('a', 'c')", "--ids").stdout.split()
    assert kiln(project, env, "runs", "delete", "-y", *ids).returncode == 0
    freed = json.loads(kiln(project, env, "store", "gc", "--json").stdout)
    after = json.loads(kiln(project, env, "store", "info", "--json").stdout)
    assert freed["bytes_freed"] == 300_000  # c's file and the unreferenced one
    assert before["artifact_bytes"] - after["artifact_bytes"] == freed["bytes_freed"]
    assert after["artifact_files"] == 1
