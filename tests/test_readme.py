"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    flow = namespace["flow"]
    assert not flow.running
    assert flow.status("double").sent == 5
    assert [e["delivered"] for e in flow.edges()] == [5]
    assert "double: finished, 5 received, 5 sent" in capsys.readouterr().out
