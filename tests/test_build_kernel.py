"""%dora_build runs the graph's build: commands; %dora_start never does, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from .kernel import Kernel

#: Every test starts with an empty graph and leaves no dora thread behind.
pytestmark = pytest.mark.usefixtures("fresh_graph")


def test_dora_build_runs_build_commands_and_start_only_lists_them(
    kernel: Kernel, tmp_path: Path
) -> None:
    (tmp_path / "a.py").write_text("from dora import Node\nprint('ran')\n")
    (tmp_path / "dataflow.yml").write_text(
        "nodes:\n  - id: a\n    path: a.py\n    build: touch built-marker\n"
    )
    kernel.execute("%dora_reset")
    kernel.execute(f"%dora_dataflow {tmp_path / 'dataflow.yml'}")
    started = kernel.execute("%dora_start --wait --timeout 20")
    assert not (tmp_path / "built-marker").exists()
    assert (
        "build: commands not run (run them with %dora_build): a: touch built-marker" in started.text
    )
    built = kernel.execute("%dora_build")
    assert (tmp_path / "built-marker").exists()  # in the descriptor's folder
    assert "build: 1 command(s) ran" in built.text


def test_dora_build_has_help_and_a_one_line_usage_error(kernel: Kernel) -> None:
    result = kernel.execute("%dora_build extra", allow_error=True)
    assert result.error is None
    lines = [x for x in result.text.splitlines() if x.strip()]
    assert len(lines) == 1 and "unrecognized arguments: extra" in lines[0], result.text
    msg_id = kernel.client.execute("%dora_build?")
    reply = kernel.reply(msg_id, timeout=30)
    pages = [p for p in reply["content"].get("payload", []) if p.get("source") == "page"]
    assert pages and "%dora_build" in pages[0]["data"]["text/plain"]
