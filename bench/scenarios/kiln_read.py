"""f. A second fresh process reads the hello-world run back.

Usage: kiln_read.py WORKDIR RUN_ID
"""

import sys

from _child import emit, kiln_store

import kiln

kiln.configure(store=kiln_store(sys.argv[1]))
emit(value=kiln.get_run(sys.argv[2]).metrics["acc"])
