# The two commands of the README: `make demo` runs the main job end to end, `make test` runs the tests.
# Each creates .venv and installs what it needs on first use (idempotent: reinstalls only when
# setup.cfg or pyproject.toml change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ihs-installed
EXTRAS ?= dev,ml,export
# `make test` also runs the Slurm and MPI clusters: Debian's slurm-wlm, munge and OpenMPI+PMIx
# (slurm/install.sh, idempotent) and the Python extras that use them (mpi4py builds against OpenMPI)
HPC_EXTRAS ?= mpi,slurm
HPC_STAMP := $(VENV)/.ihs-hpc-installed
# the shared data (DEM, BTH city polygons, reference fixtures) the demo/bth presets and the tests read;
# library code finds it only through this variable (ihs_hpc/shared_data.py)
export IHS_SHARED_DATA ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: demo test bench bench-quick install install-hpc system-deps clean-demo horovod

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash slurm/install.sh

$(HPC_STAMP): $(STAMP) | system-deps
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS),$(HPC_EXTRAS)]'
	touch $(HPC_STAMP)

install-hpc: system-deps $(HPC_STAMP)

demo: $(STAMP)
	$(BIN)/ihs run examples/demo.yaml

# Horovod 0.28.1 built from its sdist with C++17 for the venv's torch (cached wheel; see DEVELOPERS.md)
horovod: $(STAMP)
	scripts/build-horovod.sh $(VENV)

test: system-deps $(HPC_STAMP) horovod
	sh scripts/install-chromium.sh
	$(BIN)/python -m pytest -q -p no:cacheprovider

# every benchmark against its reference in the same run: one table, JSON with machine info in
# benchmarks/results/bench.json; exits 1 when a ratio is below its floor (benchmarks/harness.py)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# the small variant (a few minutes on 2 cores); CI runs it through tests/test_benchmarks.py
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

clean-demo:
	rm -rf examples/demo
