"""u. Fill a kiln store with the dashboard scenario's runs (untimed set-up).

kiln has no bulk-import API: its fastest public path for many runs is one
`TrackingClient` in one process, whose background writer commits the queued
create_run / log_params / log_metrics / set_tags / end_run records in batches (many
runs per transaction). Then one more run, in its own experiment, with LONG values of
one metric (logged 10,000 per `log_metrics` call). Writes `times.json` (each run's
start and end time, for MLflow's copy of the same runs) and prints the long run's id.

Usage: kiln_ui_populate.py WORKDIR N LONG
"""

import json
import os
import sys
import time

from _child import emit, kiln_store
from _uidata import EXPERIMENT, LONG_EXPERIMENT, LONG_KEY, long_series, ui_dataset

from kiln.store import Store
from kiln.store import schema as s
from kiln.tracking import TrackingClient

workdir, n, long_points = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = TrackingClient(kiln_store(workdir))
t0 = time.perf_counter()
for name, params, metrics, tags in ui_dataset(n):
    run_id = client.create_run(experiment=EXPERIMENT, name=name, tags=tags)
    client.log_params(run_id, params)
    client.log_metrics(run_id, [(k, v, 0, None) for k, v in metrics.items()])
    client.end_run(run_id)
client.flush()
seconds = time.perf_counter() - t0

t1 = time.perf_counter()
long_id = client.create_run(experiment=LONG_EXPERIMENT, name="long")
batch: list[tuple[str, float, int, int | None]] = []
for step, value in long_series(long_points):
    batch.append((LONG_KEY, value, step, None))
    if len(batch) == 10_000:
        client.log_metrics(long_id, batch)
        batch = []
if batch:
    client.log_metrics(long_id, batch)
client.end_run(long_id)
client.flush()
long_seconds = time.perf_counter() - t1

from sqlalchemy import select  # noqa: E402 - kiln imports it anyway

with client.store.read() as conn:
    times = {
        name: [start, end]
        for name, start, end in conn.execute(
            select(s.runs.c.name, s.runs.c.start_time, s.runs.c.end_time)
        )
    }
with open(os.path.join(workdir, "times.json"), "w") as fh:
    json.dump(times, fh)
Store.close_all()  # checkpoint the WAL so the folder is a whole store
size = os.path.getsize(os.path.join(kiln_store(workdir), "kiln.db"))
emit(
    runs=n,
    seconds=seconds,
    rate=n / seconds,
    long_id=long_id,
    long_points=long_points,
    long_seconds=long_seconds,
    db_mb=size / 2**20,
)
