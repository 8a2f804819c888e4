"""n. papermill: several parameterizations one after another, in one process.

Usage: papermill_sweep.py WORKDIR NOTEBOOK ALPHA [ALPHA ...]
"""

import os
import sys
import time

import papermill as pm
from _child import emit

workdir, notebook, alphas = sys.argv[1], sys.argv[2], sys.argv[3:]
t0 = time.perf_counter()
for alpha in alphas:
    pm.execute_notebook(
        notebook,
        os.path.join(workdir, f"out-{alpha}.ipynb"),
        parameters={"alpha": float(alpha)},
        progress_bar=False,
    )
emit(seconds=time.perf_counter() - t0, runs=len(alphas))
