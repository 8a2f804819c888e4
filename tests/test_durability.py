"""Tracking under failure: many writers at once, killed processes, process pools, a store
that goes away.

Everything here is real: child Pythons started with `subprocess`, SIGKILL, SQLite files,
the PostgreSQL server of conftest.py, `fork` and `spawn` process pools. Logged values
wait in a queue for at most `KILN_FLUSH_INTERVAL` seconds; these tests pin what that
costs when things go wrong (at most the last interval of a killed process) and what it
must never cost (anything else).

No test asserts how fast something happened: on a loaded machine anything can be late.
Each waits for the condition it is about (polling, with a deadline of a minute or
more) and checks the rule itself, e.g. "a value older than the flush interval is never
still unwritten when looked at" or "a run reads crashed exactly when its heartbeat is
three intervals old".
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import kiln
from conftest import PG_ADMIN_URL, make_pg_database, pg_admin_connection
from kiln import TrackingError
from kiln.store import SCHEMA_REVISIONS
from kiln.tracking import TrackingClient
from kiln.tracking._writer import Op, Writer

# Python 3.12+ warns when a process with threads (kiln's writer) forks; the fork tests
# exist to show that kiln copes with exactly that.
FORK_WARNING = "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning"


@pytest.fixture
def child_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The environment for child Pythons: this test's settings plus a bytecode cache.

    As in test_store.py: the cache sits in pytest's cache folder, so children stop paying
    for compiling SQLAlchemy after the first one. System metrics are off unless a test
    turns them on.
    """
    cache = (
        request.config.cache.mkdir("kiln-pycache")
        if request.config.cache is not None
        else tmp_path_factory.getbasetemp() / "pycache"
    )
    env = {
        **os.environ,
        "PYTHONPYCACHEPREFIX": str(cache),
        "KILN_CAPTURE_PACKAGES": "0",
        "KILN_SYSTEM_METRICS": "0",
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# Children that must start together import the slow modules first, say they are ready,
# then wait for the start signal.
_TOGETHER = """
import sys, time
from pathlib import Path
import sqlalchemy.dialects.postgresql, sqlalchemy.dialects.sqlite
import kiln, kiln.store._engine, kiln.tracking._client
Path(sys.argv[1]).touch()
deadline = time.monotonic() + 120
while not Path(sys.argv[2]).exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.002)
args = sys.argv[3:]
"""

# One writer: its own run, `n` values of one series, then the run's id on stdout.
_LOGGER = """
url, name, n = args[0], args[1], int(args[2])
kiln.configure(url)
with kiln.start_run(experiment="load", name=name) as run:
    for i in range(n):
        kiln.log_metric("loss", 1.0 / (i + 1))
print(run.id)
"""


def _run_together(
    tmp_path: Path, env: dict[str, str], body: str, argv: list[list[str]]
) -> list[tuple[int, str, str]]:
    """Run one child per argument list, released at the same instant; (code, out, err) each."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(len(argv))]
    procs: list[subprocess.Popen[str]] = []
    try:
        for flag, args in zip(ready, argv, strict=True):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", _TOGETHER + body, str(flag), str(go), *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    text=True,
                )
            )
        deadline = time.monotonic() + 120
        while not all(flag.exists() for flag in ready):
            for p in procs:
                if p.poll() is not None:
                    pytest.fail(f"a child exited before the start signal:\n{p.communicate()[1]}")
            assert time.monotonic() < deadline, "the children did not get ready in 120 s"
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, results, strict=True)]


def _check_every_value_stored(
    url: str, results: list[tuple[int, str, str]], n: int, count_rows: Callable[[], int]
) -> None:
    """Every writer succeeded quietly and every one of its `n` values is in the store."""
    for code, _, err in results:
        assert "database is locked" not in err
        assert code == 0, f"a writer failed:\n{err}"
        assert err == "", f"a writer complained:\n{err}"
    assert count_rows() == n * len(results)
    kiln.configure(url)
    ids = [out.strip() for _, out, _ in results]
    assert len(set(ids)) == len(results)
    expected = [(i, 1.0 / (i + 1)) for i in range(n)]
    for run_id in ids:
        history = kiln.metric_history(run_id, "loss")
        assert [(m.step, m.value) for m in history] == expected
        assert kiln.get_run(run_id).status == "finished"


def _sqlite_rows(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def _pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql)).all()]
    finally:
        engine.dispose()


def _wait_for(
    what: str, ready: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 120
) -> None:
    """Wait (up to `timeout` s) until `ready()`, failing early if the child dies first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr is not None else ""
            pytest.fail(f"the child exited ({proc.returncode}) before {what}:\n{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# ------------------------------------------------------------ many writers at once


@pytest.mark.slow
def test_eight_processes_log_into_one_existing_sqlite_store(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    db = tmp_path / "store" / "kiln.db"
    url = f"sqlite:///{db}"
    TrackingClient(url)  # the store exists before the writers start
    n = 5_000

    results = _run_together(
        tmp_path, child_env, _LOGGER, [[url, f"w{i}", str(n)] for i in range(8)]
    )

    _check_every_value_stored(
        url, results, n, lambda: _sqlite_rows(db, "SELECT count(*) FROM metrics")[0][0]
    )


@pytest.mark.slow
def test_eight_processes_create_and_fill_a_new_sqlite_store_at_once(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    db = tmp_path / "new" / "kiln.db"  # neither the folder nor the file exists
    url = f"sqlite:///{db}"
    n = 5_000

    results = _run_together(
        tmp_path, child_env, _LOGGER, [[url, f"w{i}", str(n)] for i in range(8)]
    )

    _check_every_value_stored(
        url, results, n, lambda: _sqlite_rows(db, "SELECT count(*) FROM metrics")[0][0]
    )
    assert _sqlite_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert _sqlite_rows(db, "SELECT version_num FROM alembic_version") == [(SCHEMA_REVISIONS[-1],)]
    assert _sqlite_rows(db, "SELECT name FROM experiments") == [("load",)]


@pytest.mark.slow
@pytest.mark.postgres
def test_four_processes_log_into_one_postgresql_store(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    n = 2_000

    results = _run_together(
        tmp_path, child_env, _LOGGER, [[url, f"w{i}", str(n)] for i in range(4)]
    )

    _check_every_value_stored(
        url, results, n, lambda: _pg_rows(url, "SELECT count(*) FROM metrics")[0][0]
    )


# ------------------------------------------------------------------ killed processes

# Logs one value per step for ever. After each call returns, the step and the time are
# appended to a file (the first line is the run id): a value is queued no later than the
# time written next to it.
_ENDLESS = """
import sys, time
import kiln
kiln.configure(sys.argv[1])
run = kiln.start_run(experiment="crash")
kiln.flush()
with open(sys.argv[2], "a") as log:
    print(run.id, file=log, flush=True)
    step = 0
    while True:
        kiln.log_metric("step", float(step), step=step)
        print(step, time.time(), file=log, flush=True)
        step += 1
        time.sleep(0.001)
"""


def _start_endless(url: str, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _ENDLESS, url, str(log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    _wait_for("the run started", lambda: log.exists() and log.read_text().count("\n") > 1, proc)
    return proc, log.read_text().splitlines()[0]


def _kill(proc: subprocess.Popen[str]) -> float:
    """SIGKILL the child, reap it (a zombie still has a pid), return when it was killed."""
    killed = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert proc.stderr is not None
    assert proc.stderr.read() == ""
    proc.stderr.close()
    return killed


def _newest_stored(db: Path, run_id: str, key: str) -> tuple[int, float] | None:
    """The (step, value) of the run's newest stored value of `key`, or None."""
    rows = _sqlite_rows(
        db,
        "SELECT step, value FROM metrics WHERE run_id = ? AND key = ? ORDER BY step DESC LIMIT 1",
        run_id,
        key,
    )
    return (int(rows[0][0]), float(rows[0][1])) if rows else None


@pytest.mark.slow
def test_a_killed_process_loses_at_most_its_last_flush_interval(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    db = tmp_path / "store" / "kiln.db"
    url = f"sqlite:///{db}"
    interval = 0.2
    margin = 0.3  # scheduling on a busy machine, and the commit itself
    log = tmp_path / "steps.log"
    proc, run_id = _start_endless(url, log, {**child_env, "KILN_FLUSH_INTERVAL": str(interval)})

    # Watch the child's writer, with no flush anywhere: at each look, the oldest value
    # not stored yet must be younger than the interval (a value is queued no later than
    # the time logged beside it). A busy machine may delay a look, never fail it: wait
    # until three looks, each seeing newer values stored, found the writer keeping up.
    kept_up: list[int] = []

    def writer_keeps_up() -> bool:
        lines = [line.split() for line in log.read_text().splitlines()[1:]]
        logged = [(int(s), float(t)) for s, t, *_ in (x for x in lines if len(x) == 2)]
        newest = _newest_stored(db, run_id, "step")
        now = time.time()
        if newest is None or newest[0] < 100:
            return False
        unstored = [when for step, when in logged if step > newest[0]]
        if (not unstored or now - unstored[0] <= interval + margin) and (
            not kept_up or newest[0] > kept_up[-1]
        ):
            kept_up.append(newest[0])
        return len(kept_up) >= 3

    _wait_for("the writer to keep up with no flush", writer_keeps_up, proc)
    _kill(proc)

    kiln.configure(url)
    stored = [m.step for m in kiln.metric_history(run_id, "step")]
    assert len(stored) > kept_up[-1]  # nothing stored before the kill is lost
    assert stored == list(range(len(stored)))  # written in order: no gaps
    assert all(m.value == m.step for m in kiln.metric_history(run_id, "step"))

    # Its heartbeat is fresh (10 s interval) but its process is gone from this host.
    run = kiln.get_run(run_id)
    assert run.status == "crashed"
    assert run.end_time is None
    assert _sqlite_rows(db, "PRAGMA integrity_check") == [("ok",)]
    with kiln.start_run(experiment="crash") as after:
        kiln.log_metric("loss", 0.5)
    assert kiln.get_run(after.id).status == "finished"
    assert kiln.get_run(after.id).metrics == {"loss": 0.5}


@pytest.mark.slow
def test_a_run_whose_heartbeat_stopped_reads_crashed_within_three_intervals(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    db = tmp_path / "store" / "kiln.db"
    url = f"sqlite:///{db}"
    beat = 0.3
    # Values wait up to 60 s: heartbeats must not wait for them.
    env = {**child_env, "KILN_HEARTBEAT_INTERVAL": str(beat), "KILN_FLUSH_INTERVAL": "60"}
    proc, run_id = _start_endless(url, tmp_path / "steps.log", env)
    kiln.configure(url)

    def heartbeat() -> int:
        ((at,),) = _sqlite_rows(db, "SELECT heartbeat_at FROM runs WHERE id = ?", run_id)
        return int(at)

    def crashed_by_sql() -> tuple[bool, float, float]:
        """Whether the SQL filter (which knows nothing of pids) says crashed, and the
        clock (ms) just before and after it was asked."""
        before = time.time() * 1000
        found = run_id in set(kiln.runs(filter="status = 'crashed'")["run_id"])
        return found, before, time.time() * 1000

    # While the process lives, its heartbeats go on (three new ones, with no value
    # written meanwhile), and the filter reads the run as running.
    beats = {heartbeat()}

    def three_more_beats() -> bool:
        beats.add(heartbeat())
        return len(beats) >= 4

    def reads_running() -> bool:
        return run_id in set(kiln.runs(filter="status = 'running'")["run_id"])

    _wait_for("three heartbeats", three_more_beats, proc)
    _wait_for("the filter to read the run running", reads_running, proc)
    _kill(proc)

    # Dead, it reads crashed exactly when its last heartbeat is three intervals old:
    # never before, and at every look after.
    last = heartbeat()
    deadline = time.monotonic() + 60
    while True:
        found, before, after = crashed_by_sql()
        if found:
            assert after - last > 3 * beat * 1000, "read crashed before three intervals"
            break
        assert before - last <= 3 * beat * 1000 + 1, "still running after three intervals"
        assert time.monotonic() < deadline, "the run never read as crashed"
        time.sleep(0.02)

    # Read from another machine, where the pid means nothing: the heartbeat decides.
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE runs SET host = 'another-machine' WHERE id = ?", (run_id,))
    assert kiln.get_run(run_id).status == "crashed"
    assert _sqlite_rows(db, "PRAGMA integrity_check") == [("ok",)]


# ------------------------------------------------------------------- process pools


def _task_inherited(i: int) -> str:
    """A fork worker: logs to the parent's active run, inherited, and to a run of its own."""
    kiln.log_metric("from_workers", float(i), step=i)
    with kiln.start_run(name=f"task-{i}") as nested:
        kiln.log_metric("v", float(i))
    return nested.id


def _task_by_id(url: str, parent_id: str, i: int) -> str:
    """A spawn worker: a new interpreter, given the store and the parent run's id."""
    kiln.configure(url)
    kiln.get_client().log_metrics(parent_id, [("from_workers", float(i), i, None)])
    with kiln.start_run(parent=parent_id, name=f"task-{i}") as nested:
        kiln.log_metric("v", float(i))
    return nested.id


def _fork_executor(task: Callable[[int], str], tasks: int) -> list[str]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(task, range(tasks)))


def _spawn_executor(task: Callable[[int], str], tasks: int) -> list[str]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(task, range(tasks)))


def _fork_pool(task: Callable[[int], str], tasks: int) -> list[str]:
    with multiprocessing.get_context("fork").Pool(2) as pool:  # leaving calls terminate()
        return pool.map(task, range(tasks))


@pytest.mark.slow
@pytest.mark.filterwarnings(FORK_WARNING)
@pytest.mark.parametrize(
    "pool", [_fork_executor, _spawn_executor, _fork_pool], ids=["fork", "spawn", "fork-pool"]
)
def test_values_logged_in_pool_workers_are_kept(
    pool: Callable[[Callable[[int], str], int], list[str]],
    store_url: str,
    child_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PYTHONPYCACHEPREFIX", "KILN_CAPTURE_PACKAGES", "KILN_SYSTEM_METRICS"):
        monkeypatch.setenv(name, child_env[name])  # for spawned interpreters
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    tasks = 8
    kiln.configure(store_url)

    with kiln.start_run(experiment="pool") as run:
        kiln.log_metric("parent", 1.0)  # still queued when the workers fork
        if pool is _spawn_executor:
            kiln.flush()  # the run id goes to other processes
            nested = pool(functools.partial(_task_by_id, store_url, run.id), tasks)
        else:
            nested = pool(_task_inherited, tasks)
        kiln.log_metric("parent", 2.0)

    history = kiln.metric_history(run.id, "from_workers")
    assert [(m.step, m.value) for m in history] == [(i, float(i)) for i in range(tasks)]
    assert [m.value for m in kiln.metric_history(run.id, "parent")] == [1.0, 2.0]
    assert kiln.get_run(run.id).status == "finished"
    for i, nested_id in enumerate(nested):
        child = kiln.get_run(nested_id)
        assert (child.parent_id, child.experiment, child.name) == (run.id, "pool", f"task-{i}")
        assert (child.status, child.metrics) == ("finished", {"v": float(i)})


# ------------------------------------------------------------------- system metrics


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


@pytest.mark.slow
def test_system_metrics_are_sampled_into_top_level_runs_that_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_SYSTEM_METRICS_INTERVAL", "0.2")
    kiln.configure(tmp_path / "kiln.db")

    def samples(run_id: str) -> int:
        if "system/cpu_percent" not in kiln.get_run(run_id).metrics:  # reads flush first
            return 0
        return len(kiln.metric_history(run_id, "system/cpu_percent"))

    with (
        kiln.start_run(experiment="sys", system_metrics=True) as top,
        kiln.start_run(name="nested") as nested,  # nested: not sampled by default
    ):
        deadline = time.monotonic() + 120  # busy until three samples, however slow
        while samples(top.id) < 3:
            assert time.monotonic() < deadline, "fewer than 3 samples in 120 s"
            _busy(0.2)
    with kiln.start_run(experiment="sys", system_metrics=False) as off:
        _busy(1.0)

    cpu = kiln.metric_history(top.id, "system/cpu_percent")
    memory = kiln.metric_history(top.id, "system/memory_mb")
    assert len(cpu) >= 3
    assert len(memory) >= 3
    assert [m.step for m in cpu] == list(range(len(cpu)))
    # A busy loop takes most of a core; > 5 leaves room for a loaded CI machine.
    assert max(m.value for m in cpu) > 5
    assert all(m.value > 10 for m in memory)  # a Python with SQLAlchemy is well over 10 MB
    assert 0 < kiln.get_run(top.id).metrics["system/memory_percent"] <= 100
    for quiet in (nested, off):
        assert not [k for k in kiln.get_run(quiet.id).metrics if k.startswith("system/")]


# ------------------------------------------------------------------ the writer


@contextlib.contextmanager
def _talking_child(code: str, *args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`python -c code *args` with text pipes on stdin, stdout and stderr; killed after
    120 s (a stuck child must not hang the suite) and on the way out if still running."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        yield proc
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_values_reach_other_processes_after_flush_or_within_the_interval(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    db = tmp_path / "store" / "kiln.db"
    url = f"sqlite:///{db}"
    TrackingClient(url)
    code = """
import sys, kiln
from kiln.tracking import TrackingClient
kiln.configure(sys.argv[1])
run = kiln.start_run(experiment="seen")   # KILN_FLUSH_INTERVAL=60: nothing written yet
kiln.log_metric("a", 1.0)
print(run.id, flush=True)
sys.stdin.readline()
kiln.flush()
print("flushed", flush=True)
fast = TrackingClient(sys.argv[1], flush_interval=0.3)
other = fast.create_run(experiment="seen")
fast.log_metrics(other, [("b", 2.0, None, None)])
print(other, flush=True)
sys.stdin.readline()
"""

    def values(run_id: str) -> list[tuple[str, float]]:
        return _sqlite_rows(db, "SELECT key, value FROM metrics WHERE run_id = ?", run_id)

    with _talking_child(code, url, env={**child_env, "KILN_FLUSH_INTERVAL": "60"}) as proc:
        first = proc.stdout.readline().strip()
        assert values(first) == []  # queued in the child
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "flushed\n"
        assert values(first) == [("a", 1.0)]

        second = proc.stdout.readline().strip()
        # Written by the client's own 0.3 s interval, with no flush: well before the
        # 60 s of KILN_FLUSH_INTERVAL (the deadline leaves a busy machine 30 s).
        _wait_for("the value written without a flush", lambda: bool(values(second)), proc, 30)
        assert values(second) == [("b", 2.0)]
        _, err = proc.communicate("\n", timeout=60)
    assert (proc.returncode, err) == (0, "")


@pytest.mark.slow
def test_ending_a_run_writes_it_at_once(tmp_path: Path, child_env: dict[str, str]) -> None:
    """A run's end hands everything to the writer thread at once, not at the next
    interval (60 s here): it is stored while the process waits, with no flush and no
    exit, and os._exit then (no atexit flush) loses nothing."""
    db = tmp_path / "kiln.db"
    code = """
import os, sys, kiln
kiln.configure(sys.argv[1])
with kiln.start_run(experiment="ended") as run:  # KILN_FLUSH_INTERVAL=60
    for i in range(100):
        kiln.log_metric("loss", float(i))
print(run.id, flush=True)
sys.stdin.readline()
os._exit(0)  # no atexit: only the write the run's end started can have stored it
"""
    env = {**child_env, "KILN_FLUSH_INTERVAL": "60"}
    with _talking_child(code, f"sqlite:///{db}", env=env) as proc:
        run_id = proc.stdout.readline().strip()

        def stored() -> bool:
            status = _sqlite_rows(db, "SELECT status FROM runs WHERE id = ?", run_id)
            count = _sqlite_rows(db, "SELECT count(*) FROM metrics WHERE run_id = ?", run_id)
            return status == [("finished",)] and count == [(100,)]

        # Well before the 60 s interval; the deadline leaves a busy machine 30 s.
        _wait_for("the ended run to be written", stored, proc, 30)
        _, err = proc.communicate("\n", timeout=60)

    assert (proc.returncode, err) == (0, "")
    assert _sqlite_rows(db, "SELECT status FROM runs WHERE id = ?", run_id) == [("finished",)]
    assert _sqlite_rows(db, "SELECT count(*) FROM metrics WHERE run_id = ?", run_id) == [(100,)]


@pytest.mark.slow
def test_a_worker_process_run_is_written_before_its_end_returns(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    db = tmp_path / "kiln.db"
    code = """
import multiprocessing as mp, os, sys, kiln

def work(url, q):
    kiln.configure(url)
    with kiln.start_run(experiment="ended") as run:  # KILN_FLUSH_INTERVAL=60
        for i in range(100):
            kiln.log_metric("loss", float(i))
    q.put(run.id)
    q.close()
    q.join_thread()  # the queue's own feeder thread must deliver the id first
    os._exit(0)  # as a terminated pool worker: no atexit, no finalizers

if __name__ == "__main__":
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=work, args=(sys.argv[1], q))
    p.start()
    print(q.get(timeout=60), flush=True)
    p.join(60)
"""
    script = tmp_path / "worker.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script), f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        env={**child_env, "KILN_FLUSH_INTERVAL": "60"},
        timeout=120,
    )

    assert (done.returncode, done.stderr) == (0, "")
    run_id = done.stdout.strip()
    assert _sqlite_rows(db, "SELECT status FROM runs WHERE id = ?", run_id) == [("finished",)]
    assert _sqlite_rows(db, "SELECT count(*) FROM metrics WHERE run_id = ?", run_id) == [(100,)]


def test_a_full_queue_makes_callers_wait_and_drops_nothing() -> None:
    written: list[Op] = []

    def slow_write(ops: list[Op]) -> None:
        time.sleep(0.005)
        written.extend(ops)

    writer = Writer(slow_write, interval=0.01, max_queue=4)
    most = 0
    for i in range(200):
        writer.submit(("n", i))
        most = max(most, writer.pending)
    writer.flush()

    assert written == [("n", i) for i in range(200)]
    assert writer.pending == 0
    # At most a full queue plus one batch being written: the producer waited.
    assert most <= 2 * 4


def test_a_full_queue_with_many_producers_drops_nothing() -> None:
    written: list[Op] = []

    def slow_write(ops: list[Op]) -> None:
        time.sleep(0.002)
        written.extend(ops)

    writer = Writer(slow_write, interval=0.01, max_queue=8, batch=3)

    def produce(who: int) -> None:
        for i in range(100):
            writer.submit((f"p{who}", i))

    threads = [threading.Thread(target=produce, args=(who,)) for who in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.flush()

    for who in range(4):
        assert [i for kind, i in written if kind == f"p{who}"] == list(range(100))
    assert len(written) == 400


@pytest.mark.postgres
def test_flush_reports_a_failing_store_and_writes_the_values_once_it_is_back(
    tmp_path: Path,
) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    name = url.rsplit("/", 1)[1]
    client = TrackingClient(url)
    run_id = client.create_run(experiment="outage")
    client.log_metrics(run_id, [("loss", 0.5, 0, None)])
    client.flush()

    # The database stops accepting connections; its open sessions are cut.
    with pg_admin_connection() as admin:
        admin.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        admin.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
            {"d": name},
        )
    client.log_metrics(run_id, [("loss", 0.4, 1, None)])
    with pytest.raises(
        TrackingError,
        match=rf"(?s)could not write \d+ queued record\(s\) to the store: .*{name}.* "
        r"not currently accepting connections.*They stay queued and will be retried",
    ):
        client.flush()
    client.log_metrics(run_id, [("loss", 0.3, 2, None)])  # logging goes on meanwhile

    with pg_admin_connection() as admin:
        admin.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    client.flush()
    history = client.metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.4), (2, 0.3)]
    client.end_run(run_id)
    client.flush()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_dropped_store_is_reported_by_every_flush_and_at_exit(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    name = url.rsplit("/", 1)[1]
    code = """
import sys, kiln, sqlalchemy as sa
url, admin_url, name = sys.argv[1:4]
kiln.configure(url)
run = kiln.start_run(experiment="outage")
kiln.log_metric("loss", 0.5)
kiln.flush()
admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
with admin.connect() as conn:
    conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
kiln.log_metric("loss", 0.4)
for attempt in range(2):
    try:
        kiln.flush()
    except kiln.TrackingError as exc:
        print(" ".join(str(exc).split()), flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", code, url, PG_ADMIN_URL, name],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
    )

    # Records left unwritten at exit make the exit status 1, and are saved for recovery.
    assert done.returncode == 1, done.stderr
    lost = (
        rf'could not write \d+ queued record\(s\) to the store: .*database "{name}" does not exist'
    )
    reports = done.stdout.splitlines()
    assert len(reports) == 2
    assert all(re.search(lost + ".* They stay queued and will be retried", r) for r in reports)
    assert "Traceback" not in done.stderr
    assert "INSERT" not in done.stderr  # the error's first line, not the statement
    assert re.search("^kiln: kiln " + lost, done.stderr, re.MULTILINE)  # said again at exit
    saved = re.search(
        r"^kiln: (\d+) unwritten record\(s\) were saved to (\S+)\.", done.stderr, re.M
    )
    assert saved is not None, done.stderr
    assert Path(saved[2]).parent == Path(child_env["KILN_HOME"])
    assert len(Path(saved[2]).read_text().splitlines()) == 1 + int(saved[1])


@pytest.mark.filterwarnings(FORK_WARNING)
def test_a_forked_child_writes_only_its_own_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_FLUSH_INTERVAL", "60")  # the parent's values wait in its queue
    db = tmp_path / "kiln.db"
    url = f"sqlite:///{db}"
    kiln.configure(url)

    with kiln.start_run(experiment="fork") as run:
        for i in range(100):
            kiln.log_metric("parent", float(i))
        pid = os.fork()
        if pid == 0:  # the child: a run of its own, then out without atexit
            code = 1
            try:
                client = TrackingClient(url)
                own = client.create_run(experiment="fork", name="child")
                client.log_metrics(own, [("child", float(i), None, None) for i in range(10)])
                client.end_run(own)
                client.flush()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for i in range(100, 150):
            kiln.log_metric("parent", float(i))
    kiln.flush()

    assert _sqlite_rows(db, "SELECT count(*) FROM metrics") == [(160,)]
    history = kiln.metric_history(run.id, "parent")
    assert [(m.step, m.value) for m in history] == [(i, float(i)) for i in range(150)]
    (child,) = _sqlite_rows(db, "SELECT id FROM runs WHERE name = 'child'")
    assert [m.value for m in kiln.metric_history(child[0], "child")] == [
        float(i) for i in range(10)
    ]


@pytest.mark.slow
def test_a_forked_child_that_exits_normally_leaves_the_parents_run_running(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'kiln.db'}"
    code = """
import os, sys, kiln
kiln.configure(sys.argv[1])
run = kiln.start_run(experiment="fork")
kiln.log_metric("loss", 1.0)
pid = os.fork()
if pid == 0:
    sys.exit(0)  # a normal exit: atexit handlers run in the child
os.waitpid(pid, 0)
print(run.id, kiln.get_run(run.id).status)
kiln.log_metric("loss", 0.5)
"""
    done = subprocess.run(
        [sys.executable, "-c", code, url],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
    )

    assert (done.returncode, done.stderr) == (0, "")
    run_id, status_after_child = done.stdout.split()
    assert status_after_child == "running"
    kiln.configure(url)
    run = kiln.get_run(run_id)
    assert run.status == "finished"  # ended by the parent's own exit
    assert [m.value for m in kiln.metric_history(run_id, "loss")] == [1.0, 0.5]


# A tight loop: each value is the time it was queued, steps 0, 1, 2, ... in order.
_TIGHT = """
import sys, time
import kiln
kiln.configure(sys.argv[1])
run = kiln.start_run(experiment="tight")
kiln.flush()
with open(sys.argv[2], "w") as f:
    print(run.id, file=f, flush=True)
log, now = kiln.log_metric, time.time
while True:
    log("t", now())
"""


@pytest.mark.slow
def test_a_killed_tight_loop_loses_at_most_its_last_flush_interval(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    # Hundreds of thousands of log_metric calls a second outrun a writer thread that
    # writes one batch per wake-up: the queue's age, not only its size, must be bounded.
    db = tmp_path / "store" / "kiln.db"
    url = f"sqlite:///{db}"
    interval = 0.5
    margin = 0.3  # scheduling on a busy machine, and the commit itself
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", _TIGHT, url, str(started)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**child_env, "KILN_FLUSH_INTERVAL": str(interval)},
        text=True,
    )
    _wait_for("the run started", lambda: started.exists() and started.read_text().strip(), proc)
    run_id = started.read_text().strip()
    begun = time.time()

    # Each stored value is the time it was queued, and values are queued back to back:
    # at a look, the oldest value not stored yet is younger than (now - newest stored).
    # Bounded by size only, the queue fell further behind each second; bounded by age,
    # it stays within the interval. Wait for three looks, from 2 s in, each seeing newer
    # values stored, that found it so (a busy machine may delay a look, never fail it).
    kept_up: list[int] = []

    def writer_keeps_up() -> bool:
        newest = _newest_stored(db, run_id, "t")
        now = time.time()
        if newest is None or now - begun < 2:
            return False
        step, queued = newest
        if now - queued <= interval + margin and (not kept_up or step > kept_up[-1]):
            kept_up.append(step)
        return len(kept_up) >= 3

    _wait_for("the writer to keep up with a tight loop", writer_keeps_up, proc)
    _kill(proc)

    kiln.configure(url)
    history = kiln.metric_history(run_id, "t")
    assert len(history) > kept_up[-1]  # nothing stored before the kill is lost
    assert [m.step for m in history] == list(range(len(history)))  # in order, no gaps
    assert all(a.value <= b.value for a, b in itertools.pairwise(history))
