#!/bin/sh
# Debian's headless Chromium for the browser test of the report (tests/test_report_browser.py).
# Idempotent: a no-op when chromium is already on PATH. Needs root (or sudo) and Debian's apt.
set -eu
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-chromium.sh: chromium is missing and installing it needs root (apt-get install chromium)" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium.sh: chromium is missing and this system has no apt-get; install Chromium by hand" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
