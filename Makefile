# Two commands from a fresh clone: `make demo` and `make test`. Both create (or update,
# when pyproject.toml changed) the environment exactly as the README's install does:
# the CPU wheel of torch first, so pip never resolves a multi-GB CUDA build, then grucli
# with its extras.

PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= test,real,ray
BIN := $(VENV)/bin
STAMP := $(VENV)/.grucli-installed

.PHONY: env demo test test-slow

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: env  ## the demo grid: rnn vs gru vs lstm on adding and copy (about 2 minutes on 2 cores)
	$(BIN)/grucli compare experiments/long_dependency.yaml

test: env  ## the default tests (a few minutes on 2 cores)
	$(BIN)/python -m pytest

test-slow: env  ## the slow convergence checks
	$(BIN)/python -m pytest -m slow
