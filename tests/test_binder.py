"""The one-click environment cannot rot: build it from exactly binder/'s files and run
notebooks in it.

The suite runs every notebook under nbval in the development environment; here
the notebooks that need what binder/ adds run again in Binder's: the quickstart,
the node-hub package (06) and the camera's image and chart widgets (08). Running
all of them twice cost the suite about a minute."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER_NOTEBOOKS = [
    "notebooks/01-quickstart.ipynb",
    "notebooks/06-dora-projects.ipynb",
    "notebooks/08-camera.ipynb",
]


def run(cmd: list[str], env: dict[str, str], timeout: float) -> None:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{cmd} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )


# It builds a whole environment (JupyterLab, dora-rs, the package) before it runs the
# notebooks: minutes, more than the suite's default of 120 s per test.
@pytest.mark.timeout(1800)
def test_binder_environment_runs_the_notebooks(tmp_path: Path) -> None:
    prefix = tmp_path / "binder-env"
    venv.EnvBuilder(with_pip=True).create(prefix)
    python = str(prefix / "bin" / "python")
    env = {**os.environ, "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    run([python, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"], env, 900)
    run(["bash", "binder/postBuild"], env, 900)
    overrides = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings = json.loads(overrides.read_text())
    assert settings["@jupyter-widgets/jupyterlab-manager:plugin"]["saveState"] is True
    # The test tools only; the notebooks run on what binder/ installed.
    run([python, "-m", "pip", "install", "--quiet", "nbval", "pytest"], env, 600)
    result = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval",
            "--nbval-current-env",
            "--nbval-sanitize-with",
            "notebooks/sanitize.cfg",
            "-o",
            "addopts=",
            *BINDER_NOTEBOOKS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
