"""d. Fill a kiln store with the search scenario's runs (untimed set-up), via `TrackingClient`.

Usage: kiln_populate.py WORKDIR N
"""

import sys
import time

from _child import emit, kiln_store, search_dataset

from kiln.store import Store
from kiln.tracking import TrackingClient

workdir, n = sys.argv[1], int(sys.argv[2])
client = TrackingClient(kiln_store(workdir))
t0 = time.perf_counter()
for name, params, metrics in search_dataset(n):
    run_id = client.create_run(experiment="bench", name=name)
    client.log_params(run_id, params)
    client.log_metrics(run_id, [(k, v, 0, None) for k, v in metrics.items()])
    client.end_run(run_id)
client.flush()
seconds = time.perf_counter() - t0
Store.close_all()  # checkpoint the WAL so the folder copies as a whole store
emit(runs=n, seconds=seconds, rate=n / seconds)
