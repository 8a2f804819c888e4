#!/usr/bin/env bash
# Create the anchor tools' own envs under bench/.envs/ (gitignored): mlflow (about 850 MB)
# for scenarios a-g, kedro and dvc for scenario h, papermill for n, evidently for m, voila
# for v.
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

# KILN_BENCH_ANCHORS=mlflow,pipelines (default: all) limits what is installed.
wants() { [[ "${KILN_BENCH_ANCHORS:-all}" == all || ",${KILN_BENCH_ANCHORS}," == *",$1,"* ]]; }

if ! wants mlflow; then
    echo "skipping mlflow (KILN_BENCH_ANCHORS=${KILN_BENCH_ANCHORS:-})"
elif [[ -x "$env/bin/python" ]] && "$env/bin/python" - "$MLFLOW_VERSION" <<'PYEOF' 2>/dev/null; then
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

if wants mlflow && [[ -x "$kiln_py" ]]; then
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

# --- Scenario h (pipelines): kedro and dvc, each in its own env (gitignored) -------------
# The bench project's module imports pandas and scikit-learn: the Kedro env gets the same
# versions as kiln's .venv. DVC runs its stages with kiln's python (stages are commands).
pipeline_anchor() {  # name, then the pinned requirements
    local name=$1
    shift
    local target="$here/.envs/$name"
    if [[ -x "$target/bin/python" ]] && "$target/bin/python" - "$@" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md
import sys

for req in sys.argv[1:]:
    dist, _, version = req.partition("==")
    if version and md.version(dist) != version:
        sys.exit(1)
PYEOF
        echo "$name is already installed in $target"
        return
    fi
    echo "Installing $* into $target ..."
    if [[ -n "$uv" ]]; then
        UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --clear --python "$PY" "$target"
        VIRTUAL_ENV="$target" "$uv" pip install --quiet --compile-bytecode "$@"
    else
        "$PY" -m venv --clear "$target"
        "$target/bin/pip" install --quiet --disable-pip-version-check "$@"
    fi
}

if wants pipelines; then
    KEDRO_VERSION=1.7.0
    DVC_VERSION=3.67.1
    pandas_version=$("$kiln_py" -c "import importlib.metadata as md; print(md.version('pandas'))")
    # shellcheck disable=SC2046  # one requirement per word
    pipeline_anchor kedro "kedro==$KEDRO_VERSION" $(versions "$kiln_py") "pandas==$pandas_version"
    pipeline_anchor dvc "dvc==$DVC_VERSION"
fi

# --- Scenario j (serving): the plain FastAPI endpoint runs in the MLflow env (MLflow 3
# already depends on fastapi and uvicorn). httptools and uvloop, which kiln's server uses,
# are added at kiln's versions so all three servers run the same uvicorn HTTP stack.
if wants mlflow && [[ -x "$kiln_py" ]]; then
    stack=$("$kiln_py" - <<'PYEOF' 2>/dev/null || true
import importlib.metadata as md

for dist in ("httptools", "uvloop"):
    try:
        print(f"{dist}=={md.version(dist)}")
    except md.PackageNotFoundError:
        pass
PYEOF
)
    if [[ -n "$stack" ]] && ! "$env/bin/python" -c "import httptools, uvloop, fastapi" 2>/dev/null; then
        # shellcheck disable=SC2086
        echo "Adding" $stack "to $env ..."
        # shellcheck disable=SC2086
        install "mlflow==$MLFLOW_VERSION" $stack
    fi
fi

# --- papermill (scenario n): its own env with the notebook's libraries, same versions as
# kiln's .venv, so both tools' kernels import the same numpy, pandas and scikit-learn (with
# pandas installed, importing scikit-learn loads it: a data-science env has it, and kiln's
# env does).
PAPERMILL_VERSION=2.7.0
pm_env="$here/.envs/papermill"
if ! wants papermill; then
    echo "skipping papermill (KILN_BENCH_ANCHORS=${KILN_BENCH_ANCHORS:-})"
elif [[ -x "$pm_env/bin/python" ]] && "$pm_env/bin/python" - "$PAPERMILL_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md
import sys

sys.exit(md.version("papermill") != sys.argv[1] or not md.version("pandas"))
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
        pm_pins=$("$kiln_py" - numpy pandas scikit-learn ipykernel nbclient <<'PYEOF' 2>/dev/null || true
import importlib.metadata as md
import sys

print(" ".join(f"{d}=={md.version(d)}" for d in sys.argv[1:]))
PYEOF
)
    fi
    # shellcheck disable=SC2086  # one requirement per word
    env="$pm_env" install "papermill==$PAPERMILL_VERSION" ${pm_pins:-numpy pandas scikit-learn ipykernel}
    "$pm_env/bin/python" -c "import papermill; print('installed papermill', papermill.__version__)"
fi

# --- Scenario m (monitoring): Evidently in its own env. evidently 0.7.23 fails to import
# with pandas 3, so pandas is held below 3; pyarrow reads the benchmark's Parquet files.
EVIDENTLY_VERSION=0.7.23
ev_env="$here/.envs/evidently"
if ! wants evidently; then
    echo "skipping evidently (KILN_BENCH_ANCHORS=${KILN_BENCH_ANCHORS:-})"
elif [[ -x "$ev_env/bin/python" ]] && "$ev_env/bin/python" - "$EVIDENTLY_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md
import sys

sys.exit(md.version("evidently") != sys.argv[1] or not md.version("pyarrow"))
PYEOF
    echo "evidently $EVIDENTLY_VERSION is already installed in $ev_env"
else
    echo "Installing evidently==$EVIDENTLY_VERSION into $ev_env ..."
    if [[ -n "$uv" ]]; then
        UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --clear --python "$PY" "$ev_env"
    else
        "$PY" -m venv --clear "$ev_env"
    fi
    env="$ev_env" install "evidently==$EVIDENTLY_VERSION" "pandas<3" pyarrow
    "$ev_env/bin/python" -c "import evidently; print('installed evidently', evidently.__version__)"
fi

# --- Scenario v (notebook app vs Voilà): Voilà in its own env with the notebook's
# libraries at kiln's versions; its `python3` kernel is that env's (ipykernel installed
# there, and Voilà starts kernels with the interpreter of the env it runs in).
VOILA_VERSION=0.5.13
voila_env="$here/.envs/voila"
if ! wants voila; then
    echo "skipping voila (KILN_BENCH_ANCHORS=${KILN_BENCH_ANCHORS:-})"
elif [[ -x "$voila_env/bin/python" ]] && "$voila_env/bin/python" - "$VOILA_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md
import sys

sys.exit(md.version("voila") != sys.argv[1] or not md.version("matplotlib"))
PYEOF
    echo "voila $VOILA_VERSION is already installed in $voila_env"
else
    echo "Installing voila==$VOILA_VERSION into $voila_env ..."
    if [[ -n "$uv" ]]; then
        UV_PYTHON_DOWNLOADS=never "$uv" venv --quiet --clear --python "$PY" "$voila_env"
    else
        "$PY" -m venv --clear "$voila_env"
    fi
    voila_pins=""
    if [[ -x "$kiln_py" ]]; then
        voila_pins=$("$kiln_py" - numpy pandas matplotlib ipykernel <<'PYEOF' 2>/dev/null || true
import importlib.metadata as md
import sys

print(" ".join(f"{d}=={md.version(d)}" for d in sys.argv[1:]))
PYEOF
)
    fi
    # shellcheck disable=SC2086  # one requirement per word
    env="$voila_env" install "voila==$VOILA_VERSION" ${voila_pins:-numpy pandas matplotlib ipykernel}
    "$voila_env/bin/python" -c "import voila; print('installed voila', voila.__version__)"
fi
