"""Replay in a real kernel, as a user does it: record a run, fix an operator's cell,
``%dora_replay`` it and see the diff beside the recorded messages; the live graph is
not touched. And a saved recording played as a source with ``%dora_start --speed``."""

from __future__ import annotations

from pathlib import Path

import pytest

from .kernel import Kernel, define
from .test_replay import COUNT_TO_40, UNEVEN_OPERATOR  # the op waits for the source's flag

pytestmark = pytest.mark.usefixtures("fresh_graph")


@pytest.fixture(autouse=True)
def _current(kernel: Kernel) -> None:
    kernel.execute("from dora_notebook import current")


COUNTER = """
from dora import Node
import pyarrow as pa

node = Node()
for i in range(40):
    node.send_output("n", pa.array([i]), {"i": i})
"""

# A frame of 4x4 pixels whose colour is the number; the bug: every tenth number is -1.
SCALE = """
import numpy as np
import pyarrow as pa

class Operator:
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            n = event["value"][0].as_py()
            out = {expr}
            context.send_output("out", pa.array([out]), {{"n": n}})
            frame = np.full((4, 4, 3), out % 256, np.uint8)
            meta = {{"width": 4, "height": 4, "encoding": "rgb8"}}
            context.send_output("frame", pa.array(frame.ravel()), meta)
            print("scaled", n, "to", out)
"""
BUGGY = SCALE.format(expr="n * 3 if n % 10 else -1")
FIXED = SCALE.format(expr="n * 3")
MAGIC = "%%dora_operator op --inputs n=src/n --outputs out frame --queue-size 100"


def outputs_of(kernel: Kernel, code: str) -> tuple[str, dict[str, str]]:
    """Run a cell; return its text and the data of its rich output (the replay's view)."""
    result = kernel.execute(code)
    rich = [
        out["content"]["data"]
        for out in result.outputs
        if out["msg_type"] in ("display_data", "execute_result")
        and "text/html" in out["content"]["data"]
    ]
    return result.text, rich[-1] if rich else {}


def test_record_fix_replay_shows_what_changed_and_leaves_the_graph_alone(
    kernel: Kernel, tmp_path: Path
) -> None:
    define(kernel, "%%dora_node src --outputs n", COUNTER)
    define(kernel, MAGIC, BUGGY)
    kernel.execute("%dora_record start")
    kernel.execute("%dora_start --wait --timeout 30")
    state = "f = current(); print(f.node('src').summary(), f.node('op').summary(), id(f.engine))"
    assert "op: finished, 40 received, 80 sent" in kernel.execute(state).text
    define(kernel, MAGIC, FIXED)  # the user fixes the cell and runs it again
    before = kernel.execute(state).text
    assert "src: finished, 0 received, 40 sent op: defined, 0 received, 0 sent" in before

    text, data = outputs_of(kernel, "%dora_replay op")
    lines = text.splitlines()
    assert lines[0].startswith("replay of op (operator) on 40 recorded inputs (n: 40) at speed 0:")
    assert "op/out: 36 same, 4 changed (first: #0), 0 new, 0 missing" in lines
    assert "op/frame: 36 same, 4 changed (first: #0), 0 new, 0 missing" in lines
    html = data["text/html"]
    assert "recorded #0" in html and "replayed #0 (now)" in html
    assert html.count('<img src="data:image/') == 2  # the frames, recorded and replayed
    assert "metadata: {&quot;n&quot;: 0}" in html
    assert "scaled 39 to 117" in html  # the replayed node's printed lines

    # The graph's panels and counts are as the recorded run left them.
    assert kernel.execute(state).text == before

    path = tmp_path / "run.arrow"
    kernel.execute(f"%dora_record save {path}")
    text, _ = outputs_of(kernel, f"%dora_replay op --from {path} --last 15")
    assert "on 15 recorded inputs (n: 15)" in text
    assert "op/out: 14 same, 1 changed (first: #5), 0 new, 0 missing" in text

    define(kernel, MAGIC, BUGGY)  # back to the recorded code: nothing differs
    text, _ = outputs_of(kernel, f"%dora_replay op --from {path}")
    assert "op/out: 40 same, 0 changed, 0 new, 0 missing" in text

    # From Python, the same result object; it renders the same way.
    text, data = outputs_of(kernel, "r = current().replay('op', speed=0)\nr")
    assert "op/frame: 40 same" in text and "text/html" in data


#: A saved recording rewritten without its number and cause columns, as older files are.
DROP_NUMBERS = """
import pyarrow as pa
table = pa.ipc.open_file(pa.memory_map({src!r})).read_all().drop_columns(["number", "cause"])
with pa.OSFile({dst!r}, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
    writer.write_table(table)
"""


def test_last_n_compares_the_outputs_those_inputs_caused(kernel: Kernel, tmp_path: Path) -> None:
    kernel.execute("import builtins\nbuiltins.REPLAY_SOURCE_DONE = False")
    define(kernel, "%%dora_node src --outputs n", COUNT_TO_40)
    magic = "%%dora_operator op --inputs n=src/n --outputs out --queue-size 100"
    define(kernel, magic, UNEVEN_OPERATOR)
    kernel.execute("%dora_record start")
    kernel.execute("%dora_start --wait --timeout 30")
    # Inputs 36-39 caused 0 + 1 + 2 + 0 outputs: exactly those three are compared.
    text, _ = outputs_of(kernel, "%dora_replay op --last 4")
    lines = text.splitlines()
    assert lines[0].startswith("replay of op (operator) on 4 recorded inputs (n: 4) at speed 0:")
    assert "estimated" not in text
    assert "op/out: 3 same, 0 changed, 0 new, 0 missing" in lines

    # A file without the engine's numbers (saved before they were): the estimate, said so.
    path, old = tmp_path / "run.arrow", tmp_path / "old.arrow"
    kernel.execute(f"%dora_record save {path}")
    kernel.execute(DROP_NUMBERS.format(src=str(path), dst=str(old)))
    text, _ = outputs_of(kernel, f"%dora_replay op --from {old} --last 4")
    lines = text.splitlines()
    assert lines[0].endswith(
        "the recorded outputs they answered are estimated from the outputs per input "
        "(the recording does not say which input caused which output)"
    )
    # round(39 outputs * 4 / 40 inputs) = the last 4 recorded: one of 35's among them (all
    # 39 were sent after input 36 was: the node started once the source had sent all 40;
    # in a CI run where it kept up with the source, 3 were, and it said "3 same").
    assert "op/out: 1 same, 2 changed (first: #0), 0 new, 1 missing" in lines


def test_replay_while_the_graph_runs_keeps_it_running(kernel: Kernel) -> None:
    ticker = """
    from dora import Node
    import pyarrow as pa

    node = Node()
    i = 0
    for event in node:
        if event["type"] == "INPUT":
            node.send_output("n", pa.array([i]), {"i": i})
            i += 1
    """
    define(kernel, "%%dora_node src --inputs tick=dora/timer/millis/20 --outputs n", ticker)
    define(kernel, MAGIC, BUGGY)
    kernel.execute("%dora_record start src/n op/out op/frame")
    kernel.execute("%dora_start")
    kernel.until(lambda: kernel.received("op") >= 15, 30, "op to get 15 numbers")
    text, _ = outputs_of(kernel, "%dora_replay op --last 12")
    assert "on 12 recorded inputs (n: 12)" in text
    running = kernel.execute("print(current().running, current().node('op').status)").text
    assert running.strip() == "True running"
    seen = kernel.received("op")
    kernel.until(lambda: kernel.received("op") > seen, 30, "op to keep receiving")
    kernel.execute("%dora_stop")


def test_a_saved_recording_plays_as_a_source(kernel: Kernel, tmp_path: Path) -> None:
    define(kernel, "%%dora_node src --outputs n", COUNTER)
    define(kernel, MAGIC, BUGGY)
    path = tmp_path / "numbers.arrow"
    kernel.execute("%dora_record start src/n")
    kernel.execute("%dora_start --wait --timeout 30")
    kernel.execute(f"%dora_record save {path}")
    kernel.execute("%dora_reset")
    sink = """
    class Operator:
        def __init__(self):
            self.got = []
        def on_event(self, event, context):
            if event["type"] == "INPUT":
                self.got.append(event["metadata"]["i"])
            elif event["type"] == "INPUT_CLOSED":
                print("got", self.got == list(range(40)), len(self.got))
    """
    define(kernel, f"%%dora_operator sink --inputs n=dora/replay/{path}/src/n --queue-size 1", sink)
    kernel.execute("%dora_start --speed 0 --wait --timeout 30")
    assert "got True 40" in kernel.execute("print(current().node('sink').logs[-1].text)").text


def test_replay_errors_are_one_line_and_the_magic_has_help(kernel: Kernel) -> None:
    define(kernel, "%%dora_node src --outputs n", COUNTER)
    define(kernel, MAGIC, BUGGY)
    for line, message in [
        ("%dora_replay nope", "replay: no node 'nope' (nodes: src, op)"),
        ("%dora_replay op", "replay: there is no recording: record a run first"),
        ("%dora_replay op --from missing.arrow", "replay: no recording at 'missing.arrow'"),
        ("%dora_replay op --speed -2", "speed must be 0 (as fast as queues allow) or a positive"),
        ("%dora_replay op --last 0", "--last must be a whole number >= 1, not 0"),
        ("%dora_replay op --last x", "argument --last: invalid int value: 'x'"),
    ]:
        result = kernel.execute(line, allow_error=True)
        assert result.error is None  # no traceback
        lines = [x for x in result.text.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"UsageError: {message}"), result.text
    msg_id = kernel.client.execute("%dora_replay?")
    reply = kernel.reply(msg_id, timeout=30)
    pages = [p for p in reply["content"].get("payload", []) if p.get("source") == "page"]
    text = pages[0]["data"]["text/plain"]
    assert text.split("::", 1)[1].split()[0] == "%dora_replay"
    assert "Feed NODE's recorded inputs into its current definition" in text
    assert "--from PATH" in text and "--last N" in text and "--speed X" in text
