"""A test that needs the dora CLI is skipped without it, and fails without it under CI.

Each case runs pytest in a subprocess on a one-test file marked ``dora``,
with this repository's ``conftest.py`` hook. The CLI is made unfindable as
the package looks for it: ``sys.executable`` points into an empty folder (no
``dora`` next to "this Python") and ``PATH`` is that empty folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CONFTEST = """
import os
import sys

from tests.conftest import pytest_runtest_setup  # the hook under test

if os.environ.get("HIDE_DORA"):
    sys.executable = os.path.join(os.environ["HIDE_DORA"], "python")
"""

TEST = """
import pytest

@pytest.mark.dora
def test_runs_dora():
    pass
"""

INSTALL = "pip install 'dora-notebook[dora]'"


def run_marked_test(folder: Path, hide: bool, ci: str | None) -> subprocess.CompletedProcess[str]:
    (folder / "pytest.ini").write_text("[pytest]\nmarkers = dora: needs the dora CLI\n")
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_tiny.py").write_text(TEST)
    empty = folder / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HIDE_DORA", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # nothing but pytest itself: faster
    if hide:
        env["HIDE_DORA"] = env["PATH"] = str(empty)
    if ci is not None:
        env["CI"] = ci
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "."]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", [None, "false"])
def test_without_the_cli_the_test_is_skipped(tmp_path: Path, ci: str | None) -> None:
    done = run_marked_test(tmp_path, hide=True, ci=ci)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and INSTALL in done.stdout, done.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_without_the_cli_under_ci_the_test_fails(tmp_path: Path, ci: str) -> None:
    done = run_marked_test(tmp_path, hide=True, ci=ci)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout and "skipped" not in done.stdout, done.stdout
    assert f"{INSTALL} (CI is set: a missing tool fails instead of skipping)" in done.stdout


def test_with_the_cli_next_to_python_the_test_runs_under_ci(tmp_path: Path) -> None:
    done = run_marked_test(tmp_path, hide=False, ci="true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout, done.stdout
