"""c. Create N runs, each with 5 params and 5 metrics, through the module-level API.

Timed until `kiln.flush()` has written everything to the store.

Usage: kiln_create_runs.py WORKDIR N
"""

import sys
import time

from _child import emit, kiln_store

import kiln

workdir, n = sys.argv[1], int(sys.argv[2])
kiln.configure(store=kiln_store(workdir))
client = kiln.get_client()
client.experiment_id("bench", create=True)  # the store and experiment exist before timing
t0 = time.perf_counter()
for i in range(n):
    with kiln.start_run(experiment="bench"):
        kiln.log_params({"model": "rf", "max_depth": 6, "lr": 0.1, "fold": i % 5, "seed": i})
        kiln.log_metrics({"acc": 0.9, "f1": 0.8, "auc": 0.95, "loss": 0.3, "recall": 0.7})
kiln.flush()
seconds = time.perf_counter() - t0
assert len(client.search_runs("bench")) == n
emit(runs=n, seconds=seconds, rate=n / seconds)
