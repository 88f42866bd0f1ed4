#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv with the
# package, the real dora-rs engine and the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
# Reinstall only when the dependencies changed since the last install.
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
    echo "==> installing dora-notebook[jupyter,dora,lab,test] into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[jupyter,dora,lab,test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
