"""The base install (``pip install dora-notebook``, no extras) runs dataflows and exports
notebooks; the notebook layer, behind the ``[jupyter]`` extra, says in one line what
to install."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]

MISSING_EXTRA = re.compile(
    r"dora-notebook's notebook layer needs the \[jupyter\] extra \((.+) missing\): "
    r"pip install 'dora-notebook\[jupyter\]'"
)

# An operator and a custom node that preview a dict, a str and a pyarrow Table and
# report progress: none of it may need pandas, matplotlib or Jupyter.
OPERATOR = """
import pyarrow as pa
from dora import DoraStatus

class Operator:
    def on_event(self, dora_event, context):
        if dora_event["type"] != "INPUT":
            return DoraStatus.CONTINUE
        context.preview({"rows": 3, "ok": True})
        context.preview("some text", id="text")
        context.preview(pa.table({"x": [1, 2, 3]}), id="table")
        context.report_progress(50)
        print("operator previewed")
        return DoraStatus.STOP
"""
NODE = """
import sys
import pyarrow as pa
from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        node.context.preview({"rows": 3, "ok": True})
        node.context.preview("some text", id="text")
        node.context.preview(pa.table({"x": [1, 2, 3]}), id="table")
        node.context.report_progress(100)
        print("node previewed, pandas loaded:", "pandas" in sys.modules)
        break
"""
DATAFLOW = """nodes:
  - id: op
    operator:
      python: op.py
      inputs: {tick: dora/timer/millis/20}
  - id: node
    path: node.py
    inputs: {tick: dora/timer/millis/20}
"""


def _sh(cmd: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]


def _base_venv(tmp_path: Path) -> Path:
    """A fresh venv (no system site-packages) with only ``pip install <this checkout>``."""
    source = tmp_path / "source"  # a copy, so building leaves nothing in the checkout
    shutil.copytree(
        ROOT / "dora_notebook",
        source / "dora_notebook",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    prefix = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(prefix)
    # pip's own cache (and the machine's pip configuration) keep this quick.
    installed = _sh([str(prefix / "bin" / "python"), "-m", "pip", "install", str(source)], 900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    return prefix / "bin"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_base_install_runs_and_exports_without_the_notebook_stack(tmp_path: Path) -> None:
    bin_dir = _base_venv(tmp_path)
    python = str(bin_dir / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}

    # Nothing of the [jupyter] extra came with it.
    for module in ("IPython", "ipywidgets", "ipykernel", "matplotlib", "pandas"):
        absent = _sh([python, "-c", f"import {module}"], 60, env=env)
        assert absent.returncode != 0 and "ModuleNotFoundError" in absent.stderr, module

    # `dora-notebook run`: previews and progress from an operator and a custom node.
    flow = tmp_path / "flow"
    flow.mkdir()
    (flow / "op.py").write_text(OPERATOR)
    (flow / "node.py").write_text(NODE)
    (flow / "dataflow.yml").write_text(DATAFLOW)
    run = _sh(
        [str(bin_dir / "dora-notebook"), "run", "dataflow.yml", "--stop-after", "60"],
        120,
        cwd=flow,
        env=env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stderr == ""
    printed = sorted(line[9:] for line in run.stdout.splitlines())  # without HH:MM:SS
    assert printed == [
        "stdout node: node previewed, pandas loaded: False",
        "stdout op: operator previewed",
    ]

    # `dora-notebook export` of a notebook, and the import every exported node starts with.
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "%%dora_operator op --inputs tick=dora/timer/millis/20\n" + OPERATOR
        )
    ]
    nbformat.write(notebook, tmp_path / "flow.ipynb")
    exported = _sh(
        [str(bin_dir / "dora-notebook"), "export", "flow.ipynb", "out"], 120, cwd=tmp_path, env=env
    )
    assert exported.returncode == 0, exported.stderr
    node_file = (tmp_path / "out" / "op.py").read_text()
    assert "import dora_notebook.dora_rs.shim" in node_file
    shim = _sh([python, "-c", "import dora_notebook.dora_rs.shim; print('shim ok')"], 60, env=env)
    assert shim.stdout == "shim ok\n", shim.stderr

    # The notebook layer without its extra: one line that says what to install.
    load = _sh(
        [python, "-c", "import dora_notebook; dora_notebook.load_ipython_extension(None)"],
        60,
        env=env,
    )
    assert load.returncode == 1
    last = load.stderr.strip().splitlines()[-1]
    assert last.startswith("dora_notebook.errors.MissingExtraError: ")
    match = MISSING_EXTRA.search(last)
    assert match and match.group(1) == "ipykernel, ipywidgets, matplotlib, pandas", last


def test_load_ext_without_the_jupyter_extra_shows_one_line(tmp_path: Path) -> None:
    # IPython is there but ipywidgets is not (None in sys.modules: "not installed").
    code = (
        "import sys\n"
        "sys.modules['ipywidgets'] = None\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_cell('%load_ext dora_notebook')\n"
        "print(json.dumps(sorted(shell.magics_manager.magics['line'])))\n"
    )
    result = _sh(
        [sys.executable, "-c", "import json\n" + code], 60, cwd=tmp_path, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    shown, magics = result.stdout.strip().splitlines()
    assert shown == (
        "MissingExtraError: dora-notebook's notebook layer needs the [jupyter] extra "
        "(ipywidgets missing): pip install 'dora-notebook[jupyter]'"
    )
    assert "dora_start" not in json.loads(magics)  # nothing half-registered
