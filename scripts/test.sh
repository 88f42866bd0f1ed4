#!/usr/bin/env bash
# Set up the environment, then run every check: lint, format, and the whole test
# suite (unit, kernel-level, conformance against real dora-rs, doctests, the
# notebooks under nbval, the Binder environment, real-browser tests, benchmark
# smoke runs).
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Debian's Chromium (never a browser download).
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "==> installing chromium (apt-get)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing: run 'sudo apt-get install chromium' for the browser tests" >&2
    fi
fi
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "==> ruff"
ruff check dora_notebook tests bench notebooks
ruff format --check dora_notebook tests bench notebooks
echo "==> pytest"
# One scratch folder for the run, removed afterwards: pytest's tmp_path, the
# kernels', and what dora-rs itself leaves under $TMPDIR (plain `dora run`
# makes a dora-artifacts-* folder each time and never removes it).
scratch="$(mktemp -d "${TMPDIR:-/tmp}/dora-notebook-tests.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
if [ "$#" -gt 0 ]; then
    TMPDIR="$scratch" python -m pytest "$@"
    exit
fi
# The whole suite. The Binder test spends most of its minute and a half installing
# an environment with pip (waiting on the registry, not on the CPU): it runs beside
# the rest, not after it, and its output follows the rest's.
mkdir "$scratch/binder"
TMPDIR="$scratch/binder" python -m pytest -p no:cacheprovider tests/test_binder.py \
    >"$scratch/binder.log" 2>&1 &
binder=$!
# Two workers, a test file each at a time (a file's kernel and servers are made once):
# most tests spend their time waiting on the processes they start (kernels, dora-rs,
# a browser), so two share the two cores of a small machine (CI12 serially: 21 min).
status=0
TMPDIR="$scratch" python -m pytest -n 2 --dist loadfile --ignore=tests/test_binder.py \
    || status=$?
binder_status=0
wait "$binder" || binder_status=$?
echo "==> pytest tests/test_binder.py (run beside the rest)"
cat "$scratch/binder.log"
[ "$status" -ne 0 ] && exit "$status"
exit "$binder_status"
