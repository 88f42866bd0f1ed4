#!/usr/bin/env bash
# Set up the environment, then run the example dataflow on the embedded engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/dora-notebook run examples/hello/dataflow.yml "$@"
