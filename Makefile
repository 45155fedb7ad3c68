# The two commands of the README: `make demo` runs the main job end to end, `make test` runs the tests.
# Each creates .venv and installs what it needs on first use (idempotent: reinstalls only when
# setup.cfg or pyproject.toml change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ihs-installed
EXTRAS ?= dev,ml,export

.PHONY: demo test bench install clean-demo

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ihs run examples/demo.yaml

test: $(STAMP)
	sh scripts/install-chromium.sh
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean-demo:
	rm -rf examples/demo
