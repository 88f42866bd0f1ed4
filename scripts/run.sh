#!/usr/bin/env bash
# Set up the environment, then open JupyterLab on the example notebooks
# (the embedded engine runs inside each notebook's kernel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Save widget state with notebooks, so previews survive saving and reopening.
settings=.venv/share/jupyter/lab/settings
mkdir -p "$settings"
cp binder/overrides.json "$settings/overrides.json"
args=(--ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks)
if [ "$(id -u)" = 0 ]; then args+=(--allow-root); fi
exec .venv/bin/jupyter lab "${args[@]}" notebooks/01-quickstart.ipynb "$@"
