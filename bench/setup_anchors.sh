#!/usr/bin/env bash
# Create bench/.envs/mlflow, the anchor tool's own env (about 850 MB; gitignored).
# Idempotent: does nothing when the pinned MLflow is already installed there.
# mlflow 3.18.0 does not install here (its mlflow-skinny 3.18.0 is not on the index).
set -euo pipefail

MLFLOW_VERSION=3.17.2
PY=${PY:-python3.11}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
env="$here/.envs/mlflow"

if [[ -x "$env/bin/python" ]] && "$env/bin/python" - "$MLFLOW_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md
import sys

sys.exit(md.version("mlflow") != sys.argv[1])
PYEOF
    echo "mlflow $MLFLOW_VERSION is already installed in $env"
    exit 0
fi

uv=${UV:-$(command -v uv || true)}
if [[ -z "$uv" && -x "$here/../.tools/bin/uv" ]]; then
    uv="$here/../.tools/bin/uv"
fi

echo "Installing mlflow==$MLFLOW_VERSION into $env ..."
if [[ -n "$uv" ]]; then
    # Compile bytecode now, so the first timed `import mlflow` does not pay for it.
    UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --clear --python "$PY" "$env"
    VIRTUAL_ENV="$env" "$uv" pip install --quiet --compile-bytecode "mlflow==$MLFLOW_VERSION"
else
    "$PY" -m venv --clear "$env"
    "$env/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
fi
"$env/bin/python" -c "import mlflow; print('installed mlflow', mlflow.__version__)"
