"""``dora-notebook run``: exit codes, output format, working directory, Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "dora_notebook.cli"]


def write_flow(tmp_path: Path, nodes: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    path = tmp_path / "dataflow.yml"
    path.write_text("nodes:\n" + nodes)
    return path


def run(path: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", str(path), *args], capture_output=True, text=True, timeout=timeout, cwd="/"
    )


SRC = """
import os, sys
import pyarrow as pa
from dora import Node
node = Node()
print(os.getenv("GREETING"), sys.argv[1:], os.getcwd())
for i in range(3):
    node.send_output("n", pa.array([i]))
"""
OP = """
from dora import DoraStatus
class Operator:
    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            print("got", event["value"].to_pylist())
            if event["value"][0].as_py() == FAIL_AT:
                raise RuntimeError("broken on purpose")
        return DoraStatus.CONTINUE
"""
NODES = """  - id: src
    path: src.py
    args: --count "3 times"
    env: {GREETING: hi}
    outputs: [n]
  - id: op
    operator:
      python: op.py
      inputs: {n: src/n}
"""


def test_run_prints_prefixed_output_in_the_descriptor_folder(tmp_path: Path) -> None:
    path = write_flow(tmp_path, NODES, {"src.py": SRC, "op.py": OP.replace("FAIL_AT", "-1")})
    result = run(path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d stdout src: hi \['--count', '3 times'\] .*", lines[0])
    assert lines[0].endswith(str(tmp_path))
    assert [line[9:] for line in lines[1:]] == [f"stdout op: got [{i}]" for i in range(3)]


def test_a_failing_node_exits_1_with_a_one_line_reason(tmp_path: Path) -> None:
    path = write_flow(tmp_path, NODES, {"src.py": SRC, "op.py": OP.replace("FAIL_AT", "1")})
    result = run(path)
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "dora-notebook: node 'op' failed: RuntimeError: broken on purpose"
    )
    assert "stderr op: Traceback" in result.stdout  # the traceback is in the node's output


def test_invalid_descriptor_exits_1_without_traceback(tmp_path: Path) -> None:
    path = write_flow(
        tmp_path, "  - id: a\n    path: a.py\n    inputs: {x: dora/timer/parsecs/3}\n", {"a.py": ""}
    )
    result = run(path)
    assert result.returncode == 1
    assert result.stderr == (
        "dora-notebook: node 'a': inputs.x: unknown timer unit 'parsecs' in "
        "'dora/timer/parsecs/3' (use dora/timer/secs|millis|micros|nanos/N "
        "or dora/timer/hz/N)\n"
    )


TICKER = """
from dora import Node
for event in Node():
    if event["type"] == "INPUT":
        print("tick")
"""


def test_stop_after_stops_a_graph_that_would_run_forever(tmp_path: Path) -> None:
    path = write_flow(
        tmp_path,
        "  - id: t\n    path: t.py\n    inputs: {x: dora/timer/millis/100}\n",
        {"t.py": TICKER},
    )
    began = time.monotonic()
    result = run(path, "--stop-after", "1")
    assert result.returncode == 0, result.stderr
    assert 0.9 < time.monotonic() - began < 10
    assert 5 <= result.stdout.count("stdout t: tick") <= 11


SLOW_TO_STOP = """
import time
from dora import Node
for event in Node():
    if event["type"] == "STOP":
        time.sleep(2)
        print("ended")
"""


def test_stop_after_waits_for_a_node_that_ends_after_its_stop_as_dora_run(
    tmp_path: Path,
) -> None:
    # dora run gives nodes 10 s after its STOP (cli.STOP_GRACE); %dora_stop keeps its 2 s.
    path = write_flow(
        tmp_path,
        "  - id: t\n    path: t.py\n    inputs: {x: dora/timer/millis/100}\n",
        {"t.py": SLOW_TO_STOP},
    )
    began = time.monotonic()
    result = run(path, "--stop-after", "1")
    assert result.returncode == 0, result.stderr
    assert "stdout t: ended" in result.stdout
    assert 2.9 < time.monotonic() - began < 10


def test_ctrl_c_stops_the_graph_cleanly(tmp_path: Path) -> None:
    path = write_flow(
        tmp_path,
        "  - id: t\n    path: t.py\n    inputs: {x: dora/timer/millis/50}\n",
        {"t.py": TICKER + "print('stopped', event['type'], event['id'])\n"},
    )
    proc = subprocess.Popen(
        [*CLI, "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert "tick" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "stdout t: stopped STOP MANUAL" in out
    assert err.strip() == "dora-notebook: interrupted; dataflow stopped"


def test_version_and_usage_errors() -> None:
    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip().startswith("dora-notebook ")
    bad = subprocess.run(
        [*CLI, "run", "x.yml", "--stop-after", "soon"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "'soon' is not a number of seconds" in bad.stderr
    for value in ("nan", "inf", "0", "-1"):
        refused = subprocess.run(
            [*CLI, "run", "x.yml", f"--stop-after={value}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode == 2, value
        assert f"--stop-after must be a positive number, not '{value}'" in refused.stderr


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("dora-notebook")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "dora-notebook" in result.stdout


def test_a_binary_file_or_a_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "photo.yml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    result = subprocess.run([*CLI, "run", str(binary)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "is not YAML text (not UTF-8 at byte" in result.stderr
    (tmp_path / "node").mkdir()
    (tmp_path / "flow.yml").write_text("nodes:\n  - id: a\n    path: node\n")
    folder = subprocess.run(
        [*CLI, "run", str(tmp_path / "flow.yml")], capture_output=True, text=True, timeout=30
    )
    assert folder.returncode == 1
    assert folder.stderr.strip() == "dora-notebook: node 'a': path: 'node' is a folder, not a file"


def test_descriptors_beyond_the_limits_are_refused_before_start(tmp_path: Path) -> None:
    (tmp_path / "n.py").write_text("")
    many = "nodes:\n" + "".join(f"  - id: n{i}\n    path: n.py\n" for i in range(1001))
    (tmp_path / "many.yml").write_text(many)
    result = subprocess.run(
        [*CLI, "run", str(tmp_path / "many.yml"), "--stop-after", "5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "1,001 nodes is beyond the 1,000 one dataflow may have" in result.stderr
    huge = tmp_path / "huge.yml"
    huge.write_text("nodes: []\n" + "#" * (4 * 1024 * 1024) + "\n")
    big = subprocess.run([*CLI, "run", str(huge)], capture_output=True, text=True, timeout=30)
    assert big.returncode == 1 and "larger than the 4,194,304 bytes" in big.stderr
