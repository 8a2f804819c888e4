"""f. Hello world in a fresh process: a new store, one run with one metric.

Usage: kiln_hello.py WORKDIR
"""

import sys

from _child import emit, kiln_store

import kiln

kiln.configure(store=kiln_store(sys.argv[1]))
with kiln.start_run(experiment="hello") as run:
    kiln.log_metric("acc", 0.93)
emit(run_id=run.id)
