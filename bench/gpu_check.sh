#!/usr/bin/env bash
# Run kiln's CUDA tests (the `gpu`-marked tests of tests/test_torch.py) on a GPU machine:
#   bench/gpu_check.sh                 # with .venv/bin/python
#   PYTHON=/path/to/python bench/gpu_check.sh -x
# Needs a Python with kiln's dev dependencies (make env-dev) and a CUDA build of torch
# (make env-dev installs the CPU build where /opt/wheels has one: replace it). Exits 2
# when torch sees no GPU, instead of letting the tests skip; otherwise pytest's status.
# A few minutes at most: five tests, each trains a small MLP; one starts `kiln serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-.venv/bin/python}

command -v nvidia-smi >/dev/null && nvidia-smi -L || echo "(no nvidia-smi on PATH)"
"$PY" - <<'PYEOF'
import sys

import torch

print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, "
      f"GPU available: {torch.cuda.is_available()}")
if not torch.cuda.is_available():
    print("No usable GPU: the CUDA path would be skipped, not tested. Install a CUDA build "
          "of torch into this Python, or check the driver and CUDA_VISIBLE_DEVICES.",
          file=sys.stderr)
    sys.exit(2)
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i} {torch.cuda.get_device_name(i)}")
PYEOF
# KILN_REQUIRE_GPU=1: a gpu test runs (and fails) rather than skips if CUDA went missing.
KILN_REQUIRE_GPU=1 exec "$PY" -m pytest tests/test_torch.py -m gpu -p no:randomly -n 0 -q -rs "$@"
