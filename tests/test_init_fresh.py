"""A newcomer's first hour, from nothing (issue 19's acceptance test).

In a fresh virtual env holding only kiln-ml's wheel and, in an empty folder: `kiln init
demo`, then `make test` and `make run` in it, then `make register`, `make monitor` before
anything was served (it says so), `make run` and `make register` again (no new version),
the command `make serve PORT=0` runs (on a free port), a prediction of real rows from the
project's data, and `make monitor` on what the server logged, which must exit 0. The project's own env
comes from its uv.lock through the package index, as it does for a user; torch is never
needed. Each step's output is printed, so a failure shows which step broke and why.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PYTHON = "python3.11"

pytestmark = pytest.mark.slow


def _uv() -> str | None:
    """uv as `make env-dev` finds it: on PATH, in this env, or in .tools/."""
    for candidate in (shutil.which("uv"), BIN / "uv", ROOT / ".tools" / "bin" / "uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


class Tour:
    """Runs the steps in a user's shell (no test settings) and prints what each said."""

    def __init__(self, tmp: Path, uv: str) -> None:
        self.tmp = tmp
        self.venv = tmp / "venv"
        tools = tmp / "bin"  # uv alone on PATH: not this checkout's kiln or python
        tools.mkdir()
        (tools / "uv").symlink_to(uv)
        path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != BIN]
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "KILN_", "COV_"))
            and k not in ("PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
        }
        self.env.update(
            PATH=os.pathsep.join([str(tools), str(self.venv / "bin"), *path]),
            UV_LINK_MODE="copy",  # the shared uv cache is on another file system
            UV_PYTHON_DOWNLOADS="never",
            NO_COLOR="1",
        )
        self.times: dict[str, float] = {}
        self.wheel = Path()

    def run(
        self,
        step: str,
        args: list[str],
        cwd: Path,
        timeout: float,
        *,
        env: dict[str, str] | None = None,
        status: int = 0,
    ) -> str:
        """Run one step; fail naming it, with its command and output, unless it exits
        with `status`."""
        start = time.perf_counter()
        try:
            done = subprocess.run(
                args, cwd=cwd, env=env or self.env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            out = _text(exc.stdout) + _text(exc.stderr)
            pytest.fail(f"step {step!r} ({shlex.join(args)}) ran past {timeout:.0f}s:\n{out}")
        seconds = self.times[step] = time.perf_counter() - start
        print(f"=== {step}: {shlex.join(args)} -> {done.returncode} in {seconds:.1f}s")
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        if done.returncode != status:
            pytest.fail(
                f"step {step!r} ({shlex.join(args)}, in {cwd}) exited {done.returncode}:\n"
                f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
            )
        return done.stdout + done.stderr


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def _http(url: str, body: object = None, timeout: float = 30) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:  # the server's error body says why
        return exc.code, {"error": exc.read().decode(errors="replace")}


def _serve_command(tour: Tour, project: Path, port_file: Path) -> list[str]:
    """The command `make serve PORT=0` runs after `register`: on a free port, which it
    writes to `port_file`."""
    dry = tour.run("make -n serve", ["make", "-n", "serve", "PORT=0"], project, timeout=30)
    [line] = [x for x in dry.splitlines() if " kiln serve " in f" {x} "]
    assert "--port 0 " in line, line
    return [*shlex.split(line), "--port-file", str(port_file)]


def _stop(server: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (uv passes it on; kiln serve shuts down gracefully), then kill the group."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            return server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
            return None
    return server.returncode


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Tour:
    """A fresh virtual env holding kiln-ml[init] from a wheel built now (dist/ may be old)."""
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed (`make env-dev` installs it into .tools/)")
    if shutil.which(PYTHON) is None:
        pytest.skip(f"{PYTHON} is not on PATH; the fresh env and the project need it")
    if shutil.which("make") is None:
        pytest.skip("make is not on PATH; the generated project's tasks are make targets")
    tmp = tmp_path_factory.mktemp("fresh")
    tour = Tour(tmp, uv)
    wheels = tmp / "wheel"
    tour.run(
        "build kiln-ml's wheel",
        [uv, "build", "--wheel", "--out-dir", str(wheels), str(ROOT)],
        ROOT,
        timeout=300,
    )
    [tour.wheel] = wheels.glob("kiln_ml-*.whl")
    tour.run("uv venv", [uv, "venv", "--quiet", "--python", PYTHON, str(tour.venv)], tmp, 120)
    tour.run(
        "install kiln-ml[init]",
        [uv, "pip", "install", "--quiet", "--python", str(tour.venv / "bin" / "python"),
         f"{tour.wheel}[init]"],
        tmp,
        timeout=300,
    )  # fmt: skip
    return tour


def test_a_newcomer_goes_from_kiln_init_to_monitoring(tour: Tour, tmp_path: Path) -> None:
    start = time.perf_counter()
    wheel = tour.wheel

    # kiln init in an empty folder: the project gets the wheel kiln was installed from
    work = tmp_path / "empty"  # (conftest made tmp_path / "work" the cwd)
    work.mkdir()
    out = tour.run("kiln init demo", ["kiln", "init", "demo"], work, timeout=300)
    project = work / "demo"
    assert f"Created {project.resolve()}" in out
    assert [p.name for p in (project / "wheels").iterdir()] == [wheel.name]
    assert (project / "uv.lock").is_file(), "kiln init wrote no uv.lock (is the index reachable?)"

    out = tour.run("make test", ["make", "test"], project, timeout=600)
    assert "passed" in out
    assert "explore.ipynb: ok" in out
    out = tour.run("make run", ["make", "run"], project, timeout=300)
    for step in ("load", "preprocess", "train", "evaluate"):
        assert re.search(rf"done\s+{step}\b", out), step
    out = tour.run("make register", ["make", "register"], project, timeout=300)
    assert "Set demo@production -> version 1." in out
    # before anything was served, monitoring says there is nothing yet, and what to do
    out = tour.run("make monitor (nothing served)", ["make", "monitor"], project, 300, status=2)
    flat = " ".join(out.split())
    assert "No predictions of 'models:/demo@production' were logged yet" in flat, out
    assert "--log-rate 1" in flat, out
    # a second `make run` changes nothing, so `make serve` registers no new version
    out = tour.run("make run (again)", ["make", "run"], project, timeout=300)
    out = tour.run("make register (again)", ["make", "register"], project, timeout=300)
    assert "models:/demo/1, the latest version of 'demo', is already this model" in out
    assert "demo@production already points at version 1; nothing changed." in out

    # real rows of the project's data, with their labels
    code = (
        "import json\nfrom demo.pipeline import TARGET, load\n"
        "rows = load(1.0, 0).sample(40, random_state=1)\n"
        "print(json.dumps({'X': rows.drop(columns=TARGET).to_dict('records'),"
        " 'y': rows[TARGET].tolist()}))"
    )
    out = tour.run("rows", [str(project / ".venv/bin/python"), "-c", code], project, 120)
    data = json.loads(out.strip().splitlines()[-1])

    port_file = tmp_path / "port"
    command = _serve_command(tour, project, port_file)
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            command, cwd=project, env=tour.env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    served = time.perf_counter()
    try:
        while not port_file.is_file() or not port_file.read_text().strip():
            if server.poll() is not None or time.perf_counter() - served > 120:
                why = "was not ready in 120s" if server.poll() is None else "exited"
                pytest.fail(
                    f"step 'serve' ({shlex.join(command)}) {why}:\n"
                    + log.read_text(errors="replace")
                )
            time.sleep(0.2)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        tour.times["serve (ready)"] = time.perf_counter() - served
        assert _http(f"{url}/health") == (200, {"status": "ok"})
        status, body = _http(f"{url}/predict?proba=true", data["X"])
        print(f"=== predict: {status} {json.dumps(body)[:500]}")
        assert status == 200, body
        predictions = body["predictions"]
        assert len(predictions) == len(data["y"])
        assert set(predictions) <= {0, 1}
        assert all(abs(sum(p) - 1) < 1e-6 for p in body["probabilities"])
        right = sum(p == y for p, y in zip(predictions, data["y"], strict=True))
        assert right >= 0.8 * len(predictions), (predictions, data["y"])
    finally:
        code_at_stop = _stop(server)
        print(f"=== serve: stopped with {code_at_stop}\n{log.read_text(errors='replace')}")
    assert code_at_stop == 0, f"kiln serve did not shut down cleanly:\n{log.read_text()}"

    out = tour.run("make monitor", ["make", "monitor"], project, timeout=300)
    assert f"OK models:/demo@production: {len(predictions)} current rows" in out
    assert (project / "monitoring.html").is_file()
    # nothing the tour made shows up as a change to commit
    assert tour.run("git status", ["git", "status", "--porcelain"], project, 30).strip() == ""

    total = time.perf_counter() - start
    print("=== times: " + ", ".join(f"{k} {v:.1f}s" for k, v in tour.times.items()))
    print(f"=== total {total:.1f}s (and the fresh env before it)")


def test_an_old_wheel_in_dist_is_not_reused(tmp_path: Path) -> None:
    # kiln init in a kiln checkout takes dist/'s wheel unless the source changed after it
    from kiln._wheel import _stale

    (tmp_path / "src" / "kiln").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('name = "kiln-ml"\n', encoding="utf-8")
    code = tmp_path / "src" / "kiln" / "cli.py"
    code.write_text("", encoding="utf-8")
    wheel = tmp_path / "dist" / "kiln_ml-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"")
    now = time.time()
    for path in (tmp_path / "pyproject.toml", code):
        os.utime(path, (now - 60, now - 60))
    cache = tmp_path / "src" / "kiln" / "__pycache__" / "cli.pyc"
    cache.parent.mkdir()
    cache.write_bytes(b"")  # compiled later: not a change to the source
    os.utime(wheel, (now - 30, now - 30))
    assert not _stale(wheel, tmp_path)
    os.utime(code, (now, now))  # edited after `make dist`
    assert _stale(wheel, tmp_path)


def test_without_uv_init_and_make_say_how_to_get_it(tour: Tour, tmp_path: Path) -> None:
    # a newcomer who pip-installed kiln-ml and never heard of uv
    path = [d for d in tour.env["PATH"].split(os.pathsep) if not (Path(d) / "uv").exists()]
    env = {**tour.env, "PATH": os.pathsep.join(path)}
    if shutil.which("make", path=env["PATH"]) is None:
        pytest.skip("make and uv are in the same folder here; PATH cannot hide only uv")
    out = tour.run(
        "kiln init (no uv)", ["kiln", "init", "nouv", "--no-git"], tmp_path, 120, env=env
    )
    assert "uv is not installed" in out
    assert "pip install uv" in out
    out = tour.run("make test (no uv)", ["make", "test"], tmp_path / "nouv", 60, env=env, status=2)
    assert "uv is not on PATH" in out
    assert "pip install uv" in out
