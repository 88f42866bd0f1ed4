#!/usr/bin/env bash
# Set up the environment, then run every check: lint, format, the test suite
# (unit, CLI, conformance against real dora-rs, doctests) and a benchmark smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "==> ruff"
ruff check dora_notebook tests bench
ruff format --check dora_notebook tests bench
echo "==> pytest"
exec python -m pytest "$@"
