#!/usr/bin/env bash
# Build Horovod 0.28.1 (its last release) for the venv's torch and install it, idempotently.
#
# Why: Horovod 0.28.1 sets CMAKE_CXX_STANDARD 14, and torch >= 2.1 headers need C++17, so
# `pip install horovod==0.28.1` fails to compile against torch 2.13. The fix was merged upstream
# but never released. This script downloads the sdist, raises the standard to 17 in
# CMakeLists.txt and horovod/torch/CMakeLists.txt, and builds a wheel with PyTorch + Gloo
# (no TensorFlow, no MXNet; MPI only with IHS_HOROVOD_WITH_MPI=1).
#
# The wheel is cached under ${IHS_WHEEL_CACHE:-~/.cache/ihs_hpc/wheels}/ keyed by the Horovod,
# torch and Python versions, so a rebuild happens only when one of them changes (a few minutes on
# 2 cores); a venv that already imports horovod.torch of that build is left as is (< 2 s).
#
# Usage: scripts/build-horovod.sh [VENV]        (default VENV: .venv)
# Needs: a C++17 compiler (g++; installed with apt-get when missing and running as root) and
# cmake (installed from PyPI into the venv when missing).
set -euo pipefail

VENV=${1:-${VENV:-.venv}}
PY="$VENV/bin/python"
HVD_VERSION=0.28.1
[ -x "$PY" ] || { echo "build-horovod: no python at $PY (run make install first)" >&2; exit 2; }

TORCH_VERSION=$("$PY" -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null) || {
    echo "build-horovod: torch is not importable from $PY (install the 'ml' extra first)" >&2; exit 2; }
PYTAG=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
MPI_TAG=$([ "${IHS_HOROVOD_WITH_MPI:-0}" = 1 ] && echo mpi || echo gloo)
KEY="horovod-${HVD_VERSION}-torch-${TORCH_VERSION}-${PYTAG}-${MPI_TAG}"
CACHE_ROOT=${IHS_WHEEL_CACHE:-$HOME/.cache/ihs_hpc/wheels}
CACHE="$CACHE_ROOT/$KEY"
STAMP="$VENV/.horovod-$KEY"

# 1. already installed from this build: nothing to do
if [ -f "$STAMP" ] && "$PY" -c "
import importlib.metadata as m, importlib.util as u
assert m.version('horovod') == '$HVD_VERSION' and m.version('torch') == '$TORCH_VERSION'
import glob, os
assert glob.glob(os.path.join(os.path.dirname(u.find_spec('horovod').origin), 'torch', 'mpi_lib_v2*.so'))" 2>/dev/null; then
    echo "build-horovod: horovod $HVD_VERSION for torch $TORCH_VERSION already installed in $VENV"
    exit 0
fi

# 2. no cached wheel: build one
WHEEL=$(ls "$CACHE"/horovod-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$WHEEL" ]; then
    if ! command -v g++ >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "build-horovod: installing g++ with apt-get"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ make >/dev/null
        else
            echo "build-horovod: a C++17 compiler (g++) is needed and apt-get is not usable here" >&2; exit 2
        fi
    fi
    "$PY" -m pip install --quiet --upgrade setuptools wheel packaging cffi cloudpickle psutil pyyaml
    if ! command -v cmake >/dev/null 2>&1 && [ ! -x "$VENV/bin/cmake" ]; then
        echo "build-horovod: installing cmake from PyPI into $VENV"
        "$PY" -m pip install --quiet "cmake>=3.20,<4"
    fi
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ihs-horovod-build.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    echo "build-horovod: building horovod $HVD_VERSION for torch $TORCH_VERSION ($PYTAG, $MPI_TAG) in $WORK"
    "$PY" -m pip download --quiet "horovod==$HVD_VERSION" --no-binary :all: --no-deps -d "$WORK"
    tar -xzf "$WORK/horovod-$HVD_VERSION.tar.gz" -C "$WORK"
    SRC="$WORK/horovod-$HVD_VERSION"
    # the one change: C++14 -> C++17 (torch >= 2.1 headers use C++17)
    sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$SRC/CMakeLists.txt" "$SRC/horovod/torch/CMakeLists.txt"
    if grep -q "CMAKE_CXX_STANDARD 14" "$SRC/CMakeLists.txt" "$SRC/horovod/torch/CMakeLists.txt"; then
        echo "build-horovod: could not raise CMAKE_CXX_STANDARD to 17 in $SRC" >&2; exit 1
    fi
    export HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1
    if [ "$MPI_TAG" = gloo ]; then export HOROVOD_WITHOUT_MPI=1; else export HOROVOD_WITH_MPI=1; fi
    export MAKEFLAGS="-j${IHS_BUILD_JOBS:-$(nproc)}"
    export PATH="$VENV/bin:$PATH"
    mkdir -p "$CACHE"
    "$PY" -m pip wheel --no-deps --no-build-isolation -w "$WORK/dist" "$SRC" > "$WORK/build.log" 2>&1 || {
        tail -n 60 "$WORK/build.log" >&2; echo "build-horovod: build failed (log above)" >&2; exit 1; }
    BUILT=$(ls "$WORK"/dist/horovod-*.whl | head -n1)
    # atomic: a partial copy is never taken for a cached wheel
    cp "$BUILT" "$CACHE/.$(basename "$BUILT").tmp"
    mv "$CACHE/.$(basename "$BUILT").tmp" "$CACHE/$(basename "$BUILT")"
    WHEEL="$CACHE/$(basename "$BUILT")"
    echo "build-horovod: cached $WHEEL"
fi

# 3. install the cached wheel (its small pure-Python dependencies come from PyPI)
"$PY" -m pip install --quiet --force-reinstall --no-deps "$WHEEL"
"$PY" -m pip install --quiet cloudpickle psutil pyyaml packaging cffi
"$PY" -c "import horovod.torch as hvd; hvd.init(); assert hvd.size() == 1" || {
    echo "build-horovod: horovod.torch does not initialise from $WHEEL" >&2; exit 1; }
touch "$STAMP"
echo "build-horovod: horovod $HVD_VERSION installed in $VENV from $WHEEL"
