"""h. kiln.evaluate of a binary classifier on N_TEST rows, inside a run.

Untimed: imports, data, training (`kiln.Model(LogisticRegression()).fit`). Timed:
`kiln.evaluate(model, X_test, y_test)` with its defaults: metrics, 8 plots (PNG and
Plotly JSON), the HTML report, all logged to the active run.

Usage: kiln_evaluate.py WORKDIR N_TEST
"""

import sys
import time
import warnings

t_start = time.perf_counter()
from _child import emit, kiln_store  # noqa: E402
from _evaldata import dataset, model  # noqa: E402

import kiln  # noqa: E402

workdir, n_test = sys.argv[1], int(sys.argv[2])
X_train, y_train, X_test, y_test = dataset(n_test)
kiln.configure(store=kiln_store(workdir))
with kiln.start_run(experiment="evaluate") as run:
    fitted = kiln.Model(model(), validation="off").fit(X_train, y_train)
    t_setup = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = kiln.evaluate(fitted, X_test, y_test)
    t_eval = time.perf_counter()
kiln.flush()
t_end = time.perf_counter()
emit(
    seconds=t_eval - t_setup,
    setup=t_setup - t_start,
    script=t_end - t_start,
    roc_auc=result.metrics["roc_auc"],
    accuracy=result.metrics["accuracy"],
    plots=len(result.figures),
    artifacts=len(kiln.get_run(run.id).artifacts),
)
