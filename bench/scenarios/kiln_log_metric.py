"""a. N `kiln.log_metric` calls in one run, timed from after `start_run` until they are stored.

`kiln.end_run()` returns before kiln's background writer has committed everything, so
the timing ends after `kiln.flush()`, when every value is in the store (MLflow's calls
write synchronously).

Usage: kiln_log_metric.py WORKDIR N
"""

import sys
import time

from _child import emit, kiln_store

import kiln

workdir, n = sys.argv[1], int(sys.argv[2])
kiln.configure(store=kiln_store(workdir))
kiln.get_client()  # create the store outside the timed part
run = kiln.start_run(experiment="bench")
t0 = time.perf_counter()
for i in range(n):
    kiln.log_metric("loss", 1.0 / (i + 1), step=i)
kiln.end_run()
kiln.flush()
seconds = time.perf_counter() - t0
assert len(kiln.metric_history(run.id, "loss")) == n
emit(calls=n, seconds=seconds, rate=n / seconds)
