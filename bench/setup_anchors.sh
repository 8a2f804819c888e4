#!/usr/bin/env bash
# Create bench/.envs/mlflow, the anchor tool's own env (about 850 MB; gitignored).
# Idempotent: does nothing when the pinned MLflow is already installed there.
# mlflow 3.18.0 does not install here (its mlflow-skinny 3.18.0 is not on the index).
# scikit-learn and skops are pinned to the versions in kiln's .venv (when it has them),
# so that scenario g loads the same pipeline classes with the same deserializer.
set -euo pipefail

MLFLOW_VERSION=3.17.2
PY=${PY:-python3.11}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
env="$here/.envs/mlflow"
kiln_py="$here/../.venv/bin/python"

# "dist==version" for each of these installed in an env (missing ones are left out).
versions() {
    "$1" - scikit-learn skops <<'PYEOF' 2>/dev/null || true
import importlib.metadata as md
import sys

for dist in sys.argv[1:]:
    try:
        print(f"{dist}=={md.version(dist)}")
    except md.PackageNotFoundError:
        pass
PYEOF
}

uv=${UV:-$(command -v uv || true)}
if [[ -z "$uv" && -x "$here/../.tools/bin/uv" ]]; then
    uv="$here/../.tools/bin/uv"
fi

# Install packages into the MLflow env (uv compiles bytecode now, so the first timed
# `import mlflow` does not pay for it).
install() {
    if [[ -n "$uv" ]]; then
        VIRTUAL_ENV="$env" "$uv" pip install --quiet --compile-bytecode "$@"
    else
        "$env/bin/pip" install --quiet --disable-pip-version-check "$@"
        "$env/bin/python" -m compileall -q "$env/lib" >/dev/null || true
    fi
}

if [[ -x "$env/bin/python" ]] && "$env/bin/python" - "$MLFLOW_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md
import sys

sys.exit(md.version("mlflow") != sys.argv[1])
PYEOF
    echo "mlflow $MLFLOW_VERSION is already installed in $env"
else
    echo "Installing mlflow==$MLFLOW_VERSION into $env ..."
    if [[ -n "$uv" ]]; then
        UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --clear --python "$PY" "$env"
    else
        "$PY" -m venv --clear "$env"
    fi
    install "mlflow==$MLFLOW_VERSION"
    "$env/bin/python" -c "import mlflow; print('installed mlflow', mlflow.__version__)"
fi

if [[ -x "$kiln_py" ]]; then
    want=$(versions "$kiln_py")
    have=$(versions "$env/bin/python")
    if [[ -n "$want" && "$want" != "$have" ]]; then
        # shellcheck disable=SC2086  # one requirement per word
        echo "Pinning the MLflow env to kiln's" $want "..."
        # shellcheck disable=SC2086
        install "mlflow==$MLFLOW_VERSION" $want ||
            echo "warning: could not pin" $want "in $env; scenario g reports both envs' versions." >&2
    fi
fi

# --- papermill (scenario n): its own env with the notebook's libraries, same versions as
# kiln's .venv, so both tools' kernels import the same numpy and scikit-learn.
PAPERMILL_VERSION=2.7.0
pm_env="$here/.envs/papermill"
if [[ -x "$pm_env/bin/python" ]] && "$pm_env/bin/python" - "$PAPERMILL_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md
import sys

sys.exit(md.version("papermill") != sys.argv[1])
PYEOF
    echo "papermill $PAPERMILL_VERSION is already installed in $pm_env"
else
    echo "Installing papermill==$PAPERMILL_VERSION into $pm_env ..."
    if [[ -n "$uv" ]]; then
        UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --clear --python "$PY" "$pm_env"
    else
        "$PY" -m venv --clear "$pm_env"
    fi
    pm_pins=""
    if [[ -x "$kiln_py" ]]; then
        pm_pins=$("$kiln_py" - numpy scikit-learn ipykernel nbclient <<'PYEOF' 2>/dev/null || true
import importlib.metadata as md
import sys

print(" ".join(f"{d}=={md.version(d)}" for d in sys.argv[1:]))
PYEOF
)
    fi
    # shellcheck disable=SC2086  # one requirement per word
    env="$pm_env" install "papermill==$PAPERMILL_VERSION" ${pm_pins:-numpy scikit-learn ipykernel}
    "$pm_env/bin/python" -c "import papermill; print('installed papermill', papermill.__version__)"
fi
