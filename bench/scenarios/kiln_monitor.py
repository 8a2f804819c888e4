"""m. kiln.monitor.drift on two Parquet files (read a column at a time inside the call).

Untimed: `import kiln.monitor` (and numpy, pandas, scipy, pyarrow). Timed: the
`drift(reference_path, current_path)` call at default settings.

Usage: kiln_monitor.py WORKDIR REFERENCE CURRENT [progress]
"""

import sys
import time

t_start = time.perf_counter()
import numpy  # noqa: E402, F401
import pandas  # noqa: E402, F401
import pyarrow.parquet  # noqa: E402, F401
import scipy.spatial.distance  # noqa: E402
import scipy.stats  # noqa: E402, F401
from _child import emit  # noqa: E402

from kiln.monitor import drift  # noqa: E402

reference, current = sys.argv[2], sys.argv[3]
progress = len(sys.argv) > 4 and sys.argv[4] == "progress"
t_setup = time.perf_counter()
result = drift(reference, current, progress=progress)
t_end = time.perf_counter()
emit(
    seconds=t_end - t_setup,
    setup=t_setup - t_start,
    columns=len(result.table),
    drifted=result.drifted_columns,
)
