"""What the program sees when the store cannot take what it logs.

A store that cannot be written fails the run at its start; one that stops taking writes
during a run makes the run's end raise; what is still unwritten at exit goes to a
recovery file (`kiln store recover`) and the exit status is 1. One value the store can
never take is refused at the call, or dropped alone: it never blocks what follows.

All real: child Pythons, the PostgreSQL server of conftest.py (made read-only or refusing
connections for one test database only), SQLite files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import kiln
from conftest import PG_ADMIN_URL, make_pg_database, pg_admin_connection
from kiln import StoreError, StoreUnavailableError, TrackingError
from kiln.cli import cli
from kiln.store import Store
from kiln.tracking import TrackingClient


@pytest.fixture
def child_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "KILN_CAPTURE_PACKAGES": "0", "KILN_SYSTEM_METRICS": "0"}


def _pg_count(url: str, sql: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


# ------------------------------------------------------------- item 4: bad text


SURROGATE = os.fsdecode(b"caf\xe9.csv")  # a lone surrogate, as from a non-UTF-8 file name


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda: kiln.log_param("file", SURROGATE), "value of param 'file'"),
        (lambda: kiln.log_param(SURROGATE, 1), "param key"),
        (lambda: kiln.log_params({"a": 1, "b": SURROGATE}), "value of param 'b'"),
        (lambda: kiln.set_tag("file", SURROGATE), "tag 'file'"),
        (lambda: kiln.set_tag(SURROGATE, "x"), "tag key"),
        (lambda: kiln.log_metric(SURROGATE, 1.0), "metric key"),
        (lambda: kiln.log_metrics({SURROGATE: 1.0}), "metric key"),
        (lambda: kiln.start_run(SURROGATE), "run name"),
        (lambda: kiln.start_run(experiment=SURROGATE), "experiment name"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_at_the_call(call, what: str) -> None:
    with kiln.start_run(experiment="ok") as run:
        with pytest.raises(TrackingError, match=rf"The {re.escape(what)} .*lone surrogate"):
            call()
        # Everything logged after the refused call is stored.
        kiln.log_param("after", "yes")
        kiln.log_metric("loss", 0.5)
    with kiln.start_run(experiment="later") as later:
        kiln.log_metric("loss", 0.25)
    kiln.flush()

    got = kiln.get_run(run.id)
    assert (got.status, got.params, got.metrics) == ("finished", {"after": "yes"}, {"loss": 0.5})
    assert kiln.get_run(later.id).metrics == {"loss": 0.25}


def test_a_command_line_with_a_non_utf8_file_name_is_stored(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    code = """
import sys, kiln
kiln.configure(sys.argv[1])
with kiln.start_run(experiment="argv") as run:
    kiln.log_metric("loss", 0.5)
with kiln.start_run(experiment="next") as nxt:
    kiln.log_metric("loss", 0.25)
print(run.id, nxt.id)
"""
    url = f"sqlite:///{tmp_path / 'kiln.db'}"
    done = subprocess.run(
        [sys.executable, "-c", code, url, b"caf\xe9.csv"],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
    )

    assert (done.returncode, done.stderr) == (0, "")
    first, second = done.stdout.split()
    kiln.configure(url)
    run = kiln.get_run(first)
    assert run.metrics == {"loss": 0.5}
    assert run.environment["command"].endswith("caf\\udce9.csv")  # escaped, not lost
    assert kiln.get_run(second).metrics == {"loss": 0.25}


@pytest.mark.postgres
def test_a_value_the_database_refuses_is_dropped_alone_and_reported(tmp_path: Path) -> None:
    # PostgreSQL text cannot hold NUL: the writer finds out only when it writes.
    url = make_pg_database(tmp_path / "artifacts")
    kiln.configure(url)
    with kiln.start_run(experiment="nul") as run:
        kiln.log_param("good", "yes")
        kiln.log_param("bad", "a\x00b")
        for i in range(100):
            kiln.log_metric("loss", 1.0 / (i + 1))
        kiln.set_tag("stage", "after")
        with pytest.raises(
            TrackingError,
            match=r"The store refused 1 record\(s\), which were dropped: params of run "
            rf"{run.id[:12]}: .*NUL",
        ):
            kiln.flush()
        kiln.log_metric("acc", 0.9)
    with kiln.start_run(experiment="next-experiment") as later:
        kiln.log_metric("loss", 0.25)
    kiln.flush()  # reported once: nothing is refused now

    got = kiln.get_run(run.id)
    assert got.status == "finished"
    assert got.params == {"good": "yes"}
    assert got.tags["stage"] == "after"
    assert len(kiln.metric_history(run.id, "loss")) == 100
    assert got.metrics["acc"] == 0.9
    assert kiln.get_run(later.id).metrics == {"loss": 0.25}


# ------------------------------------------------- item 3: a store that cannot be written


@pytest.mark.postgres
def test_a_read_only_store_fails_the_run_at_its_start(tmp_path: Path) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    name = url.rsplit("/", 1)[1]
    with pg_admin_connection() as admin:
        admin.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    kiln.configure(url)

    with pytest.raises(
        StoreUnavailableError,
        match=r"cannot be written: .*read-only transaction.*Nothing was logged",
    ):
        kiln.start_run(experiment="ro")

    assert kiln.active_run() is None
    assert _pg_count(url, "SELECT count(*) FROM runs") == 0
    assert TrackingClient(url).list_experiments() == []  # reading still works


_OUTAGE = """
import sys, time, kiln, sqlalchemy as sa
url, admin_url, name = sys.argv[1:4]
kiln.configure(url)

def admin(*sql):
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in sql:
            conn.execute(sa.text(statement))
    engine.dispose()

try:
    with kiln.start_run(experiment="outage") as run:
        print(run.id, flush=True)
        for i in range(2000):
            kiln.log_metric("x", float(i))
        kiln.flush()
        admin(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        for i in range(2000, 4000):
            kiln.log_metric("x", float(i))
        time.sleep(1.0)  # the writer has tried, and failed, by the run's end
except kiln.TrackingError as exc:
    print("RAISED", " ".join(str(exc).split()), flush=True)
"""


@pytest.mark.slow
@pytest.mark.postgres
def test_an_outage_past_the_run_end_raises_exits_1_and_is_recovered(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    name = url.rsplit("/", 1)[1]
    home = tmp_path / "home" / ".kiln"
    try:
        done = subprocess.run(
            [sys.executable, "-c", _OUTAGE, url, PG_ADMIN_URL, name],
            capture_output=True,
            text=True,
            env={**child_env, "KILN_HOME": str(home)},
            timeout=180,
        )
    finally:
        with pg_admin_connection() as admin:
            admin.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    run_id, raised = done.stdout.splitlines()
    assert re.match(
        r"RAISED kiln could not write \d+ queued record\(s\) to the store: .*"
        "not currently accepting connections",
        raised,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    (saved,) = home.glob("kiln-recovery-*.jsonl")
    assert f"saved to {saved}" in done.stderr
    assert f"kiln store recover '{saved}'" in done.stderr
    header = json.loads(saved.read_text().splitlines()[0])
    assert header["store"] == url.replace("postgres@", "postgres@")  # no password here

    # Nothing reached the store after the outage began; recovery writes all of it.
    assert _pg_count(url, "SELECT count(*) FROM metrics") == 2000
    result = CliRunner().invoke(cli, ["--store", url, "store", "recover", str(saved)])
    assert result.exit_code == 0, result.output
    assert re.search(
        rf"Wrote {header['records']} record\(s\) from {re.escape(str(saved))}", result.output
    )
    assert not saved.exists()
    assert saved.with_name(saved.name + ".recovered").exists()
    client = TrackingClient(url)
    history = client.metric_history(run_id, "x")
    assert [(m.step, m.value) for m in history] == [(i, float(i)) for i in range(4000)]
    assert client.get_run(run_id).status == "finished"

    # Replaying the same file again is refused: it was renamed.
    again = CliRunner().invoke(cli, ["--store", url, "store", "recover", str(saved)])
    assert isinstance(again.exception, StoreError)
    assert "Cannot read the recovery file" in str(again.exception)


def test_recover_refuses_a_file_made_for_another_store(tmp_path: Path) -> None:
    from kiln.tracking._recovery import save

    first = Store.open(tmp_path / "a" / "kiln.db")
    other = tmp_path / "b" / "kiln.db"
    TrackingClient(other)
    saved = save(first, [("metric", ("0" * 32, "x", 1.0, 0, 0))])
    assert saved.parent == tmp_path / "a"

    result = CliRunner().invoke(cli, ["--store", str(other), "store", "recover", str(saved)])

    assert isinstance(result.exception, StoreError)
    assert re.search(r"holds records of the store .*a/kiln\.db.*--force", str(result.exception))
    assert saved.exists()


def test_recover_refuses_a_file_that_is_not_a_recovery_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.jsonl"
    bogus.write_text('{"hello": 1}\n')
    result = CliRunner().invoke(cli, ["store", "recover", str(bogus)])
    assert isinstance(result.exception, StoreError)
    assert "is not a kiln recovery file" in str(result.exception)


def test_a_store_on_a_full_disk_fails_the_run_at_its_start(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    # RLIMIT_FSIZE makes every write that would grow a file fail with EFBIG, as on a
    # full disk ("database or disk is full"), without privileges.
    db = tmp_path / "store" / "kiln.db"
    code = """
import resource, signal, sys, kiln
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
kiln.configure(sys.argv[1])
print(len(kiln.get_client().list_experiments()), flush=True)  # the store opens and reads
wal = sys.argv[1] + "-wal"
import os
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(wal), resource.RLIM_INFINITY))
try:
    kiln.start_run(experiment="full")
except kiln.StoreUnavailableError as exc:
    print(" ".join(str(exc).split()))
"""
    TrackingClient(db)
    Store.close_all()  # the last connection's close checkpoints and removes the WAL
    assert not db.with_name("kiln.db-wal").exists()
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
    )

    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    count, message = done.stdout.splitlines()
    assert count == "0"
    assert re.search(
        r"cannot be written: (disk I/O error|database or disk is full)\. Nothing was logged",
        message,
    )
    with closing(__import__("sqlite3").connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


def _refuse_connections(name: str) -> None:
    """The database stops accepting connections; its open sessions are cut."""
    with pg_admin_connection() as admin:
        admin.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        admin.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
            {"d": name},
        )


@pytest.mark.postgres
def test_nested_runs_ending_while_the_store_is_down_raise_and_all_end(tmp_path: Path) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    name = url.rsplit("/", 1)[1]
    kiln.configure(url)
    ids: list[str] = []

    def two_runs() -> None:
        with kiln.start_run(experiment="outage") as outer, kiln.start_run() as inner:
            ids.extend([outer.id, inner.id])
            kiln.log_metric("loss", 0.5)
            kiln.flush()
            _refuse_connections(name)
            kiln.log_metric("loss", 0.4)
            time.sleep(1.0)  # the writer tries, and fails, before the runs end

    try:
        with pytest.raises(TrackingError, match=r"could not write \d+ queued record\(s\)"):
            two_runs()
        assert kiln.active_run() is None  # both ended, none left half-open
    finally:
        with pg_admin_connection() as admin:
            admin.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    kiln.flush()  # the store is back: everything queued is written

    outer_id, inner_id = ids
    assert [m.value for m in kiln.metric_history(inner_id, "loss")] == [0.5, 0.4]
    assert kiln.get_run(inner_id).status == "finished"
    # The inner run's end raised through the outer block: it failed, with that error.
    assert kiln.get_run(outer_id).status == "failed"
    assert "could not write" in (kiln.get_run(outer_id).error or "")


_FULL_MID_RUN = """
import os, resource, signal, sys, kiln
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
db = sys.argv[1]
kiln.configure(db)
try:
    with kiln.start_run(experiment="full") as run:
        print(run.id, flush=True)
        for i in range(500):
            kiln.log_metric("x", float(i))
        kiln.flush()
        # From here on no file may grow: the disk is full. (Rewriting the WAL from its
        # start would fit; SQLite only does that after a checkpoint, at 1,000 pages.)
        limit = os.path.getsize(db + "-wal")
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        for i in range(500, 1000):
            kiln.log_metric("x", float(i))
        import time; time.sleep(1.0)  # the writer tries, and fails, before the run ends
except kiln.TrackingError as exc:
    print("RAISED", " ".join(str(exc).split()), flush=True)
"""


@pytest.mark.slow
def test_a_disk_that_stays_full_past_the_run_end_raises_exits_1_and_is_recovered(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    db = tmp_path / "store" / "kiln.db"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_MID_RUN, str(db)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=180,
    )

    run_id, raised = done.stdout.splitlines()
    assert re.match(r"RAISED kiln could not write \d+ queued record\(s\) to the store: ", raised)
    # The database's error in one line: not the statement and its parameters.
    for text in (raised, done.stderr):
        assert "INSERT" not in text
        assert "COMMIT" not in text
        assert "sqlalche.me" not in text  # SQLAlchemy's "Background on this error" line
    assert done.returncode == 1, done.stderr
    (saved,) = db.parent.glob("kiln-recovery-*.jsonl")  # small: it fits under the limit
    assert f"saved to {saved}" in done.stderr

    result = CliRunner().invoke(cli, ["--store", str(db), "store", "recover", str(saved)])
    assert result.exit_code == 0, result.output
    client = TrackingClient(db)
    history = client.metric_history(run_id, "x")
    assert [(m.step, m.value) for m in history] == [(i, float(i)) for i in range(1000)]
    assert client.get_run(run_id).status == "finished"


@pytest.mark.postgres
@pytest.mark.parametrize("wait", ["0", "1.0"])  # refused at exit, or by the writer thread before
def test_a_refusal_nobody_saw_is_reported_at_exit_with_status_1(
    tmp_path: Path, child_env: dict[str, str], wait: str
) -> None:
    url = make_pg_database(tmp_path / "artifacts")
    code = """
import sys, time, kiln
kiln.configure(sys.argv[1])
run = kiln.start_run(experiment="nul")  # ended at exit
print(run.id, flush=True)
kiln.log_param("bad", "a\\x00b")
kiln.log_metric("loss", 0.5)
time.sleep(float(sys.argv[2]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code, url, wait],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=120,
    )

    assert done.returncode == 1, done.stderr
    assert re.search(
        r"^kiln: The store refused 1 record\(s\), which were dropped: params of run .*NUL",
        done.stderr,
        re.MULTILINE,
    )
    assert "Traceback" not in done.stderr
    run = TrackingClient(url).get_run(done.stdout.strip())
    assert (run.status, run.params, run.metrics) == ("finished", {}, {"loss": 0.5})
