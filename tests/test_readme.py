"""The README's examples run as written: the notebook cells in a real kernel, the
Python API example in this process."""

from __future__ import annotations

import re
from pathlib import Path

from .kernel import Kernel

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_python_api_example_runs(capsys) -> None:
    (example,) = [b for b in BLOCKS if "flow = Dataflow()" in b]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    flow = namespace["flow"]
    assert not flow.running
    assert flow.status("double").sent == 5
    assert [e["delivered"] for e in flow.edges()] == [5]
    assert "double: finished, 5 received, 5 sent" in capsys.readouterr().out


def test_readme_notebook_cells_run_in_a_kernel() -> None:
    cells = [b for b in BLOCKS if b.lstrip().startswith("%")]
    assert len(cells) == 4
    kernel = Kernel()
    try:
        results = [kernel.execute(cell) for cell in cells]
    finally:
        kernel.shutdown()
    assert results[-1].text.splitlines() == [
        "sensor: finished, 20 received, 20 sent",
        "dashboard: finished, 20 received, 0 sent",
    ]
