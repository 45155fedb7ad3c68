# The two commands of the README: `make demo` runs the main job end to end, `make test` runs the tests.
# Each creates .venv and installs what it needs on first use (idempotent: reinstalls only when
# setup.cfg or pyproject.toml change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ihs-installed
EXTRAS ?= dev,ml

.PHONY: demo test bench install clean-demo horovod

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ihs run examples/demo.yaml

# Horovod 0.28.1 built from its sdist with C++17 for the venv's torch (cached wheel; see DEVELOPERS.md)
horovod: $(STAMP)
	scripts/build-horovod.sh $(VENV)

test: $(STAMP) horovod
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean-demo:
	rm -rf examples/demo
