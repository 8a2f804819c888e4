"""b. One of several concurrent writers: N `kiln.log_metric` calls into its own run.

Timing starts when the harness says go (every writer has imported kiln and started
its run by then) and ends once the run has ended and `kiln.flush()` has written
everything to the store. Wall-clock stamps let the harness combine writers.

Usage: kiln_writer.py WORKDIR N
"""

import sys
import time

from _child import emit, kiln_store, wait_for_go

import kiln

workdir, n = sys.argv[1], int(sys.argv[2])
kiln.configure(store=kiln_store(workdir))
run = kiln.start_run(experiment="bench")
wait_for_go()
start = time.time()
for i in range(n):
    kiln.log_metric("loss", 1.0 / (i + 1), step=i)
t1=time.time(); kiln.end_run(); t2=time.time()
kiln.flush(); t3=time.time()
end = time.time()
assert len(kiln.metric_history(run.id, "loss")) == n
emit(calls=n, start=start, end=end, rate=n / (end - start), loop=t1-start, endrun=t2-t1, fl=t3-t2)
