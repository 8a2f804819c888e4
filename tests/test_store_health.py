"""Keeping a store whole: gc next to live writers, and a damaged kiln.db.

Real processes logging while `gc` runs, real files changed byte by byte.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiln import StoreUnavailableError, TrackingError
from kiln.cli import cli
from kiln.store import Store
from kiln.tracking import TrackingClient


@pytest.fixture
def child_env() -> dict[str, str]:
    return {**os.environ, "KILN_CAPTURE_PACKAGES": "0", "KILN_SYSTEM_METRICS": "0"}


# ------------------------------------------------------------------- item 5: gc

_ARTIFACTS = """
import sys, kiln
kiln.configure(sys.argv[1])
with kiln.start_run(experiment="files") as run:
    print(run.id, flush=True)
    for i in range(int(sys.argv[2])):
        kiln.log_text(f"artifact {i}", name=f"a/{i}.txt")
"""


@pytest.mark.slow
def test_gc_never_removes_what_a_live_process_is_logging(
    tmp_path: Path, child_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    client = TrackingClient(url)
    n = 1500
    proc = subprocess.Popen(
        [sys.executable, "-c", _ARTIFACTS, url, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
        text=True,
    )
    rounds = 0
    try:
        deadline = time.monotonic() + 180
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the child did not finish in 180 s"
            client.gc()
            rounds += 1
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert (proc.returncode, err) == (0, "")
    assert rounds > 10, "gc ran too few times to tell"
    run = client.get_run(out.strip())
    assert len(run.artifacts) == n
    missing = [a.path for a in run.artifacts if not client.artifacts.exists(a.sha256)]
    assert missing == []
    assert client.read_artifact(run.id, f"a/{n - 1}.txt") == f"artifact {n - 1}".encode()


def test_gc_keeps_new_unreferenced_files_for_the_grace_period(tmp_path: Path) -> None:
    store = tmp_path / "store"
    client = TrackingClient(store)
    new, _ = client.artifacts.put_bytes(b"being logged right now")
    old, old_size = client.artifacts.put_bytes(b"left by a crash long ago")
    blob = Path(client.artifacts.location(old))
    two_hours_ago = time.time() - 7200
    os.utime(blob, (two_hours_ago, two_hours_ago))

    result = CliRunner().invoke(cli, ["--store", str(store), "store", "gc"])

    assert result.exit_code == 0, result.output
    assert (
        f"Freed {old_size} bytes in 1 artifact file(s); purged 0 deleted run(s). "
        "Kept 1 unreferenced file(s) younger than 60 minute(s)."
    ) in result.output
    assert client.artifacts.exists(new)
    assert not blob.exists()

    result = CliRunner().invoke(cli, ["--store", str(store), "store", "gc", "--grace", "0"])
    assert result.exit_code == 0, result.output
    assert not client.artifacts.exists(new)

    bad = CliRunner().invoke(cli, ["--store", str(store), "store", "gc", "--grace", "-5"])
    assert bad.exit_code == 2
    assert "Invalid value for '--grace': -5.0 is not in the range x>=0" in bad.output


def test_gc_refuses_a_grace_period_that_is_not_minutes(tmp_path: Path) -> None:
    client = TrackingClient(tmp_path / "store")
    with pytest.raises(TrackingError, match=r"grace period is a number of minutes, 0 or more"):
        client.gc(grace=-1)


def _sqlite(db: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


# ------------------------------------------------------- item 7: a damaged kiln.db


def _make_store(db: Path) -> None:
    """A store with some runs, closed cleanly."""
    client = TrackingClient(db)
    for _ in range(3):
        run = client.create_run(experiment="e")
        client.log_params(run, {f"p{i}": "x" * 100 for i in range(200)})
        client.log_metrics(run, [("m", float(i), i, None) for i in range(2000)])
        client.end_run(run)
    client.flush()
    Store.close_all()


def _change_schema_byte(db: Path) -> None:
    data = bytearray(db.read_bytes())
    at = data.find(b"CREATE TABLE runs")
    assert at > 0
    data[at + 3] = 0xFF
    db.write_bytes(bytes(data))


def _garbage_mid_file(db: Path) -> None:
    data = bytearray(db.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 8192] = bytes((j * 7 + 3) % 256 for j in range(8192))
    db.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_change_schema_byte, r"malformed database schema|can't decode"),
        (_garbage_mid_file, r"malformed|btreeInitPage|Page \d+"),
    ],
)
def test_a_damaged_store_gets_the_cannot_open_error_before_anything_is_written(
    tmp_path: Path, damage, problem: str
) -> None:
    db = tmp_path / "store" / "kiln.db"
    _make_store(db)
    damage(db)
    before = db.read_bytes()

    import kiln

    kiln.configure(db)
    with pytest.raises(
        StoreUnavailableError,
        match=rf"(?s)Cannot open the store at .*the file is damaged \(.*({problem}).*kiln will "
        r"not write into it.*kiln store check --store .*sqlite3 .* \.recover \| sqlite3",
    ):
        kiln.start_run(experiment="after")
    assert db.read_bytes() == before  # nothing written into the damaged file

    info = CliRunner().invoke(cli, ["--store", str(db), "store", "info"])
    assert isinstance(info.exception, StoreUnavailableError)
    assert "the file is damaged" in str(info.exception)

    check = CliRunner().invoke(cli, ["--store", str(db), "store", "check"])
    assert isinstance(check.exception, StoreUnavailableError)
    assert re.search(problem, check.output)


def test_store_check_passes_a_healthy_store_and_open_skips_the_check_after_a_clean_close(
    tmp_path: Path,
) -> None:
    db = tmp_path / "store" / "kiln.db"
    _make_store(db)
    stat = db.stat()
    assert (db.parent / "kiln.db.closed").read_text().split() == [
        str(stat.st_size),
        str(stat.st_mtime_ns),
    ]

    result = CliRunner().invoke(cli, ["--store", str(db), "store", "check"])

    assert result.exit_code == 0, result.output
    assert result.output == f"ok: no problems found in {db}.\n"
    assert Store.check(db) == []
    assert TrackingClient(db).info()["runs"] == 3


def test_store_check_of_a_missing_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailableError, match=r"No kiln store at .*nowhere"):
        Store.check(tmp_path / "nowhere" / "kiln.db")
