"""`dora-notebook expand` and `validate` against dora's own, on every example descriptor of dora-rs.

The descriptors (``dora_descriptors/``, see its NOTICE) cover Rust, C and C++ nodes,
runtime nodes of several operators, dynamic nodes, ROS 2 bridge nodes, modules,
``types/`` folders and restart policies. Ours run in this process (``cli.main``);
dora's are the ``dora`` CLI of dora-rs 1.1.0.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
from pathlib import Path

import pytest

from dora_notebook.cli import main

from ..needs import needs_dora

pytestmark = pytest.mark.dora

HERE = Path(__file__).parent / "dora_descriptors"
DATAFLOWS = sorted(
    path.relative_to(HERE)
    for path in HERE.rglob("*.yml")
    if "types" not in path.relative_to(HERE).parts
    and re.search(r"^nodes:", path.read_text(encoding="utf-8"), re.MULTILINE)
)


def ours(command: str, path: Path) -> tuple[int, str]:
    out = io.StringIO()
    here = Path.cwd()
    os.chdir(path.parent)  # both read `types/` beside the file, named relative to it
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main([command, path.name])
    finally:
        os.chdir(here)
    return code, out.getvalue()


def test_the_copied_descriptors_are_all_there() -> None:
    # 87 dataflows (and 4 module or type files) in dora-rs's examples at the commit copied.
    assert len(DATAFLOWS) == 87


@pytest.mark.parametrize("command", ["expand", "validate"])
def test_every_example_descriptor_prints_as_with_dora(command: str) -> None:
    dora = needs_dora()
    differ = []
    for relative in DATAFLOWS:
        path = HERE / relative
        theirs = subprocess.run(
            [dora, command, path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        code, text = ours(command, path)
        if (code == 0) != (theirs.returncode == 0) or (code == 0 and text != theirs.stdout):
            differ.append(f"{relative}: dora exit {theirs.returncode}, ours {code}")
    assert differ == []
