# kiln's make targets: the same commands locally and in CI.
# A fresh machine needs only Python 3.11; uv (from PyPI) and the locked env come from here.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
export UV_COMPILE_BYTECODE := 1
PYTEST_ARGS ?= -n auto

.PHONY: help demo test lint docs bench dist env env-dev clean

help:
	@echo "make demo   the whole story on the embedded store: notebook, pipeline, sweep, evaluation, registry, serving, monitoring"
	@echo "make test   create the env with dev dependencies and run the whole suite"
	@echo "make lint   ruff, mypy and the import contract (import-linter)"
	@echo "make docs   the docs site (guides and the pdoc API reference) into docs/_build"
	@echo "make bench  benchmarks against the tools users would pick instead"
	@echo "make dist   build kiln-ml's wheel into dist/ (kiln-ml is not on a public index yet)"

.tools/bin/uv:
	$(PY) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

# The demo env has everything the README's tour uses (serving, notebooks, evaluation, and
# uv, with which `kiln package` builds kiln-ml's wheel and `kiln runs reproduce` its envs,
# and pytest for kiln.testing and the kiln_notebook fixture).
env: $(UV)
	$(UV) sync --frozen --python $(PY) --extra sklearn --extra serve --extra notebooks --extra evaluate --extra monitor --extra ui --extra init --extra reproduce --extra testing --quiet

# PyTorch (the torch flavor's tests) is not in the lock: PyPI's Linux wheels pull several GB
# of CUDA. Where the machine has a CPU wheel on disk (/opt/wheels), it goes into the dev env;
# --inexact keeps it there across syncs.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0*-cp311-*.whl))

env-dev: $(UV)
	$(UV) sync --frozen --inexact --python $(PY) --extra dev --quiet
ifneq ($(TORCH_WHEEL),)
	@$(BIN)/python -c "import torch, safetensors" 2>/dev/null || \
	  $(UV) pip install --python $(BIN)/python --quiet "$(TORCH_WHEEL)" "safetensors>=0.4"
endif

demo: env
	$(BIN)/python examples/demo.py

test: env-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: env-dev
	$(BIN)/ruff check src tests examples docs $(wildcard bench)
	$(BIN)/ruff format --check src tests examples docs $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

docs: env-dev
	$(BIN)/python docs/build.py docs/_build

bench: env-dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

dist: $(UV)
	$(UV) build --wheel --out-dir dist

clean:
	rm -rf $(VENV) .tools docs/_build .pytest_cache .mypy_cache .ruff_cache
