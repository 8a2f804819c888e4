"""b. Create the kiln store and the experiment before the concurrent writers start.

Usage: kiln_init.py WORKDIR
"""

import sys

from _child import emit, kiln_store

import kiln

kiln.configure(store=kiln_store(sys.argv[1]))
kiln.get_client().experiment_id("bench", create=True)
emit(ok=True)
