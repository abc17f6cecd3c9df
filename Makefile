# Two commands for a newcomer on a fresh machine; each sets up what it needs.
#   make demo               train the seed's MNIST job locally (MNIST downloaded on first use)
#   make demo DATA=DIR      the same, from a local copy of the four MNIST files
#   make test               set up, type-check (mypy) and run the whole test suite
#   make bench              the benchmarks in benchmarks/

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The four MNIST files: the project's shared copy when it sits beside the checkout
# (machines without internet access), else kerasjob downloads them on first use.
DATA   ?= $(firstword $(wildcard ../shared/data/mnist))
EPOCHS ?=

.PHONY: demo test bench setup-train setup-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup-train: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[train]"

setup-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[all,dev]"

demo: setup-train
	$(BIN)/kerasjob submit $(if $(DATA),--data-folder $(DATA)) $(if $(EPOCHS),--epochs $(EPOCHS))

test: setup-dev
	$(BIN)/mypy src/kerasjob
	$(BIN)/python -m pytest

bench: setup-dev
	$(BIN)/python benchmarks/overhead.py --repeats 5
	$(BIN)/python benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
