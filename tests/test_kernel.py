"""The notebook layer in a real ipykernel: magics, panels, coalescing, reload, interrupt."""

from __future__ import annotations

import base64
import re
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from .kernel import Kernel, define

#: Every test starts with an empty graph and leaves no dora thread behind.
pytestmark = pytest.mark.usefixtures("fresh_graph")


TICKER = """
import pyarrow as pa
class Operator:
    def __init__(self):
        self.n = 0
    def on_event(self, event, context):
        if event["type"] == "INPUT":
            self.n += 1
            context.send_output("n", pa.array([self.n]))
            context.report_progress(self.n * 100 / 12)
            print("tick", self.n)
            if self.n == 12:
                return DoraStatus.STOP
        return DoraStatus.CONTINUE
"""


def panel_parts(kernel: Kernel, panel_id: str) -> dict[str, object]:
    header, progress, previews, _ = kernel.child_ids(panel_id)
    log = kernel.log_id(panel_id)
    bar, percent = kernel.child_ids(progress)
    return {
        "header": kernel.model(header)["value"],
        "bar": kernel.model(bar)["value"],
        "percent": kernel.model(percent)["value"],
        "previews": [kernel.model(p)["outputs"] for p in kernel.child_ids(previews)],
        "log": kernel.model(log)["value"],
    }


def test_panels_show_status_counts_progress_previews_and_logs(kernel: Kernel) -> None:
    ticker = define(
        kernel,
        "%%dora_operator ticker --inputs tick=dora/timer/millis/10 --outputs n",
        "from dora import DoraStatus\n" + TICKER,
    )
    assert ticker.text.strip() == "ticker: defined, 0 received, 0 sent"
    # The sink draws a figure per message, slower than the ticker under load: a queue
    # that holds all 12 keeps the table complete (the landing run of stop 20 dropped 1
    # of 12 at the default queue of 10).
    sink = define(
        kernel,
        "%%dora_operator sink --inputs n=ticker/n --queue-size 16",
        """
        import pandas as pd
        from matplotlib.figure import Figure
        class Operator:
            def __init__(self):
                self.values = []
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    self.values += event["value"].to_pylist()
                    squares = [v * v for v in self.values]
                    context.preview(pd.DataFrame({"n": self.values, "sq": squares}))
                    fig = Figure(figsize=(2, 1), dpi=40)
                    fig.add_subplot().plot(self.values)
                    context.preview(fig, id="plot")
                    context.logger.warning("seen %d", len(self.values))
    """,
    )
    done = kernel.execute("%dora_start --wait --timeout 20")
    assert "ticker: finished, 12 received, 12 sent" in done.text
    assert "sink: finished, 12 received, 0 sent" in done.text
    (ticker_id,) = ticker.widget_ids()
    (sink_id,) = sink.widget_ids()
    t = panel_parts(kernel, ticker_id)
    assert "<b>ticker</b>" in t["header"] and "finished" in t["header"]
    assert "12 received · 12 sent · " in t["header"]  # slow previews may drop ticks
    assert t["bar"] == pytest.approx(100.0) and t["percent"] == "100%"
    # The panel shows the newest lines: the prints, in order up to the last, and, for
    # each tick a slow operator made its timer queue drop, dora's warning.
    # (A line starts the text, or follows the <pre> or a marker on the first line.)
    shown = re.findall(r"(?:^|>)tick (\d+)(?=$|<)", t["log"], re.M)
    warned = re.findall(r"^.*WARN.*$", t["log"], re.M)
    assert shown == [str(n) for n in range(13 - len(shown), 13)], t["log"]
    # Under load the drop warnings can fill most of the 15 lines shown (CI11: 13 of them).
    assert len(shown) + len(warned) >= 15 or len(shown) == 12, t["log"]
    assert all("Discarding event for input `tick`" in line for line in warned)
    s = panel_parts(kernel, sink_id)
    table, plot = s["previews"]
    html = table[0]["data"]["text/html"]
    assert "<th" in html and ">n</th>" in html and ">sq</th>" in html
    assert ">...</td>" in html and "12 rows" in html  # the truncated middle and the count
    assert ">144</td>" in html and ">1</td>" in html  # last and first rows
    png = base64.b64decode(plot[0]["data"]["image/png"])
    assert png.startswith(b"\x89PNG")
    assert "seen 12" in s["log"]
    # The node's prints went to its panel, never to a cell's output.
    assert "tick 1" not in ticker.text + sink.text + done.text


def test_prints_never_reach_the_running_cell(kernel: Kernel) -> None:
    define(
        kernel,
        "%%dora_node chatty --inputs t=dora/timer/millis/5",
        """
        from dora import Node
        for event in Node():
            print("chatter from the node")
    """,
    )
    kernel.execute("%dora_start")
    busy = kernel.execute(
        "import time\nfor i in range(3):\n    print('cell', i)\n    time.sleep(0.1)"
    )
    kernel.execute("%dora_stop")
    assert busy.text == "cell 0\ncell 1\ncell 2\n"


def test_prints_from_a_thread_pool_worker_reach_the_node_panel_not_the_cell(
    kernel: Kernel,
) -> None:
    pooled = define(
        kernel,
        "%%dora_operator pooled --inputs t=dora/timer/millis/10",
        """
        from concurrent.futures import ThreadPoolExecutor
        from dora import DoraStatus
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    with ThreadPoolExecutor(max_workers=1) as pool:
                        pool.submit(print, "from the pool worker").result()
                    return DoraStatus.STOP
                return DoraStatus.CONTINUE
        """,
    )
    done = kernel.execute("%dora_start --wait --timeout 20")
    assert "pooled: finished, 1 received, 0 sent" in done.text
    (panel_id,) = pooled.widget_ids()
    assert "from the pool worker" in panel_parts(kernel, panel_id)["log"]
    assert "from the pool worker" not in pooled.text + done.text


def test_coalescing_bounds_widget_updates(kernel: Kernel) -> None:
    kernel.execute("%config DoraMagics.preview_hz = 5")
    try:
        flood = define(
            kernel,
            "%%dora_node flood",
            """
            import time
            from dora import Node
            node = Node()
            ctx = node.context
            end = time.monotonic() + 2.0
            i = 0
            while time.monotonic() < end:
                i += 1
                ctx.preview({"type": "text", "data": f"frame {i}"})
                ctx.report_progress(i % 100)
            ctx.preview({"type": "text", "data": f"final {i}"})
            print("previews", i)
        """,
        )
        start = time.monotonic()
        kernel.execute("%dora_start --wait --timeout 20")
        elapsed = time.monotonic() - start
    finally:
        kernel.execute("%config DoraMagics.preview_hz = 10")
    (panel_id,) = flood.widget_ids()
    parts = panel_parts(kernel, panel_id)
    sent = int(parts["log"].split("previews ")[1].split("<")[0].split("\n")[0])
    assert sent > 5_000  # the graph really previewed thousands of times a second
    assert parts["previews"][0][0]["data"]["text/plain"] == f"final {sent}"  # final state shown
    updates = Counter(comm for when, comm, _ in kernel.comm_log if when >= start)
    # 5 Hz over the run, plus the first draw and the final one.
    assert max(updates.values()) <= 5 * elapsed + 3, updates.most_common(3)


def test_hot_redefinition_under_load_loses_nothing(kernel: Kernel) -> None:
    define(
        kernel,
        "%%dora_node src --outputs n",
        """
        import builtins
        import time
        import pyarrow as pa
        from dora import Node
        node = Node()
        for i in range(3000):
            node.send_output("n", pa.array([i]))
            if i % 100 == 0:
                time.sleep(0.01)
            if i == 1500:  # halfway, until the test has redefined the operator (bounded)
                deadline = time.monotonic() + 30
                while not builtins.__dict__.get("KERNEL_GO") and time.monotonic() < deadline:
                    time.sleep(0.005)
    """,
    )
    body = """
        import builtins
        SEEN = builtins.__dict__.setdefault("KERNEL_SEEN", [])
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    SEEN.append(("VERSION", event["value"][0].as_py()))
                elif event["type"] == "RELOAD":
                    SEEN.append(("RELOAD", None))
    """
    define(
        kernel,
        "%%dora_operator counter --inputs n=src/n --queue-size 5000",
        body.replace("VERSION", "v1"),
    )
    kernel.execute("%dora_start")
    kernel.until(lambda: kernel.received("counter") > 0, 10, "counter's first messages")
    redefined = define(
        kernel,
        "%%dora_operator counter --inputs n=src/n --queue-size 5000",
        body.replace("VERSION", "v2"),
    )
    assert redefined.text.strip().startswith("counter: running")
    kernel.execute("import builtins\nbuiltins.KERNEL_GO = True")  # the rest under load
    kernel.execute("%dora_wait --timeout 20")
    check = kernel.execute(
        "import builtins\ndel builtins.KERNEL_GO\nseen = builtins.KERNEL_SEEN\n"
        "print(len([v for t, v in seen if t != 'RELOAD']), "
        "[v for t, v in seen if t != 'RELOAD'] == list(range(3000)), "
        "sorted({t for t, _ in seen}))\ndel builtins.KERNEL_SEEN"
    )
    assert check.text.strip() == "3000 True ['RELOAD', 'v1', 'v2']"


def test_a_broken_redefinition_keeps_the_old_version_and_says_so(kernel: Kernel) -> None:
    define(
        kernel,
        "%%dora_operator op --inputs t=dora/timer/millis/10",
        """
        class Operator:
            def on_event(self, event, context):
                pass
    """,
    )
    kernel.execute("%dora_start")
    broken = define(
        kernel,
        "%%dora_operator op --inputs t=dora/timer/millis/10",
        """
        class Operator:
            def __init__(self):
                raise RuntimeError("not today")
    """,
    )
    status = kernel.execute("import dora_notebook\nprint(dora_notebook.current().node('op'))")
    kernel.execute("%dora_stop")
    assert "the previous one keeps running" in broken.text
    assert "RuntimeError: not today" in broken.text
    assert status.text.startswith("op: running")


def test_interrupt_during_wait_stops_the_graph_and_the_kernel_stays_usable(kernel: Kernel) -> None:
    define(
        kernel,
        "%%dora_operator forever --inputs t=dora/timer/millis/10",
        """
        class Operator:
            def on_event(self, event, context):
                pass
    """,
    )
    # stop_on_error=False: after a cell's error, ipykernel 7 aborts the requests that reach
    # it before its own "stop aborting" message (a race: CI32 and CI43 lost the next
    # cell's output, its reply "aborted"); a user's next cell comes long after.
    msg_id = kernel.client.execute("%dora_start --wait", stop_on_error=False)
    kernel.until(lambda: kernel.received("forever") >= 5, 10, "forever's first ticks")
    kernel.manager.interrupt_kernel()
    reply = kernel.reply(msg_id, timeout=10)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    after = kernel.execute(
        "import dora_notebook\nflow = dora_notebook.current()\n"
        "flow.running, flow.node('forever').status"
    )
    assert after.status == "ok" and after.text.strip() == "(False, 'finished')", after
    again = kernel.execute("%dora_start --wait --timeout 0.3")
    assert "stopped after 0.3 s" in again.text


def test_start_stop_change_and_start_again(kernel: Kernel) -> None:
    body = """
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    context.report_log("VERSION")
                    return 1
    """
    define(
        kernel, "%%dora_operator op --inputs t=dora/timer/millis/5", body.replace("VERSION", "one")
    )
    first = kernel.execute("%dora_start --wait --timeout 10")
    define(
        kernel, "%%dora_operator op --inputs t=dora/timer/millis/5", body.replace("VERSION", "two")
    )
    second = kernel.execute("%dora_start --wait --timeout 10")
    logs = kernel.execute(
        "import dora_notebook\nprint(dora_notebook.current().node('op').log_text())"
    )
    assert "op: finished" in first.text and "op: finished" in second.text
    assert logs.text.strip() == "['two']"  # a new run starts a fresh log


def test_two_cells_both_define_class_operator(kernel: Kernel) -> None:
    for name, value in (("a", 1), ("b", 2)):
        define(
            kernel,
            f"%%dora_operator {name} --inputs t=dora/timer/millis/5",
            f"""
            class Operator:
                def on_event(self, event, context):
                    context.report_log("{value}")
                    return 1
        """,
        )
    kernel.execute("%dora_start --wait --timeout 10")
    logs = kernel.execute(
        "import dora_notebook\nf = dora_notebook.current()\n"
        "print(f.node('a').log_text(), f.node('b').log_text())"
    )
    assert logs.text.strip() == "['1'] ['2']"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%dora_start --bogus", "UsageError: unrecognized arguments: --bogus"),
        ("%dora_start --engine warp", "UsageError: argument --engine: invalid choice: 'warp'"),
        ("%dora_start --timeout 5", "UsageError: --timeout applies to --wait"),
        ("%dora_start --coordinator h:1", "UsageError: --coordinator applies to --engine dora"),
        (
            "%dora_start --engine dora --machine alpha",
            "UsageError: --machine applies to --engine dora --coordinator HOST:PORT",
        ),
        (
            "%dora_start --engine dora --coordinator h:1 --daemon-port 70000",
            "UsageError: --daemon-port: 70000 is not a port number",
        ),
        ("%dora_start --engine dora --coordinator h", "UsageError: --coordinator: 'h' is not"),
        ("%dora_wait --timeout -1", "UsageError: --timeout must be a positive number"),
        ("%dora_tap nowhere/x", "UsageError: tap 'nowhere/x': no node 'nowhere'"),
        ("%dora_tap 'unbalanced", "UsageError: No closing quotation"),
        ("%dora_stop now", "UsageError: unrecognized arguments: now"),
        ("%dora_param", "UsageError: the following arguments are required: NODE"),
        ("%dora_param nowhere", "UsageError: no node 'nowhere' (nodes: none)"),
        ("%dora_param a gain fast", "UsageError: VALUE is not JSON: fast (dora param set takes"),
        ("%dora_param a gain NaN", "UsageError: VALUE is not JSON: NaN"),
        ("%dora_param a --delete", "UsageError: --delete takes NODE KEY and no VALUE"),
        ("%%dora_operator a/b\nclass Operator: pass", "UsageError: invalid node id 'a/b'"),
        (
            "%%dora_operator a --inputs t=dora/timer/parsecs/3\nclass Operator: pass",
            "UsageError: node 'a': inputs.t: unknown timer unit 'parsecs'",
        ),
        (
            "%%dora_operator a --queue-size 0\nclass Operator: pass",
            "UsageError: --queue-size must be at least 1",
        ),
        ("%%dora_operator a\nclass Operator(:\n", "UsageError: node 'a': SyntaxError"),
        ("%%dora_dataflow\nnodes: 3", "UsageError: descriptor: 'nodes' must be a list"),
        ("%dora_export out", "UsageError: cannot export: the dataflow has no nodes"),
        ("%dora_export", "UsageError: the following arguments are required: directory"),
        ("%dora_export ''", "UsageError: DIR must not be empty"),
        ('%dora_export ""', "UsageError: DIR must not be empty"),
        ("%dora_dataflow ''", "UsageError: PATH must not be empty"),
        (
            "%%dora_operator a --inputs x=b/o --inputs x=dora/timer/millis/10\n"
            "class Operator: pass",
            "UsageError: node 'a': input 'x' is given twice (x=b/o and x=dora/timer/millis/10)",
        ),
        (
            "%%dora_operator a --inputs x=b/o x=b/o\nclass Operator: pass",
            "UsageError: node 'a': input 'x' is given twice",
        ),
        (
            "%%dora_operator a --queue-size 99999999999999999999\nclass Operator: pass",
            "UsageError: --queue-size must be at most 1,000,000",
        ),
        (
            f"%%dora_operator {'n' * 5000}\nclass Operator: pass",
            "UsageError: invalid node id 'nnnnnnnnnnnnnnnnnnnn'...: 5000 characters, at most 128",
        ),
    ],
)
def test_wrong_arguments_give_a_one_line_usage_error(
    kernel: Kernel, line: str, message: str
) -> None:
    result = kernel.execute(line, allow_error=True)
    assert result.error is None  # no traceback
    lines = [x for x in result.text.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.text


def test_every_magic_has_help(kernel: Kernel) -> None:
    for magic in (
        "%dora_operator",
        "%dora_node",
        "dora_dataflow",
        "dora_start",
        "dora_wait",
        "dora_stop",
        "dora_status",
        "dora_export",
        "dora_tap",
        "dora_reset",
        "dora_param",
    ):
        msg_id = kernel.client.execute(f"%{magic}?")
        reply = kernel.reply(msg_id, timeout=30)
        pages = [p for p in reply["content"].get("payload", []) if p.get("source") == "page"]
        assert pages, magic
        text = pages[0]["data"]["text/plain"]
        usage = text.split("::", 1)[1].split()[0]
        assert usage == f"%{magic}" and "Docstring" in text


def test_param_lists_reads_and_sets_and_the_panel_shows_them(kernel: Kernel) -> None:
    scale = define(
        kernel,
        "%%dora_operator scale --inputs tick=dora/timer/millis/20",
        """
        from dora import DoraStatus
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "PARAM_UPDATE":
                    print("param", event["id"], event["value"])
                    if event["id"] == "stop":
                        return DoraStatus.STOP
    """,
    )
    listed = kernel.execute("%dora_param scale")
    assert listed.text.strip() == "No parameters set for node `scale`"
    early = kernel.execute('%dora_param scale mode "fast"')
    assert early.text.strip() == (
        'Set `mode` = "fast" on node `scale` (the graph is not running: the node gets it at '
        "the next start)"
    )
    kernel.execute("%dora_start")
    assert kernel.execute("%dora_param scale gain 2.5").text.strip() == (
        "Set `gain` = 2.5 on node `scale`"
    )
    listed = kernel.execute("%dora_param scale")
    assert listed.text.splitlines() == [
        "Parameters for node `scale`:",
        "  gain = 2.5",
        '  mode = "fast"',
    ]
    assert kernel.execute("%dora_param scale gain").text.strip() == "2.5"
    kernel.execute("%dora_param scale stop '{\"now\": true}'")
    done = kernel.execute("%dora_wait --timeout 10")
    assert "scale: finished" in done.text
    (panel_id,) = scale.widget_ids()
    header = kernel.model(kernel.child_ids(panel_id)[0])["value"]
    assert "params: gain=2.5, mode=&quot;fast&quot;, stop={&quot;now&quot;:true}" in header
    log = kernel.execute(
        "import dora_notebook; print(dora_notebook.current().node('scale').log_text())"
    )
    assert log.text.strip() == "['param mode fast', 'param gain 2.5', \"param stop {'now': True}\"]"
    missing = kernel.execute("%dora_param scale nope", allow_error=True)
    assert missing.error is None and missing.text.strip() == (
        "UsageError: node 'scale' has no parameter 'nope' (set: gain, mode, stop); "
        "set it with %dora_param scale nope VALUE"
    )
    deleted = kernel.execute("%dora_param scale mode --delete")
    assert deleted.text.strip() == "Deleted `mode` from node `scale`"
    assert "mode" not in kernel.execute("%dora_param scale").text


def test_status_graph_view_and_tap(kernel: Kernel) -> None:
    define(
        kernel,
        "%%dora_operator ticker --inputs tick=dora/timer/millis/10 --outputs n",
        "from dora import DoraStatus\n" + TICKER,
    )
    define(
        kernel,
        "%%dora_operator sink --inputs n=ticker/n",
        """
        class Operator:
            def on_event(self, event, context):
                pass
    """,
    )
    kernel.execute("%dora_start")
    tap = kernel.execute("%dora_tap ticker/n -n 3")
    kernel.execute("%dora_wait --timeout 10")
    status = kernel.execute("%dora_status")
    assert "ticker/n -> sink/n  delivered 12, dropped 0" in status.text
    (view_id,) = status.widget_ids()
    svg = kernel.model(view_id)["value"]
    assert svg.startswith("<svg") and "ticker" in svg and "timer 10 ms" in svg
    table = tap.outputs[0]["content"]["data"]["text/plain"]
    assert "time" in table and "value" in table and "[" in table
    rows = kernel.execute("print(len(_))")  # the tap's DataFrame is the cell's result
    assert rows.text.strip() == "3"


def test_dataflow_magic_loads_yaml(kernel: Kernel, tmp_path) -> None:
    (tmp_path / "src.py").write_text(
        textwrap.dedent("""
        import pyarrow as pa
        from dora import Node
        node = Node()
        for i in range(3):
            node.send_output("out", pa.array([i]))
    """)
    )
    (tmp_path / "dataflow.yml").write_text(
        "nodes:\n  - id: src\n    path: src.py\n    outputs: [out]\n"
    )
    loaded = kernel.execute(f"%dora_dataflow {tmp_path / 'dataflow.yml'}")
    assert loaded.text.strip() == "src: defined, 0 received, 0 sent"
    define(
        kernel,
        "%%dora_operator sink --inputs x=src/out",
        """
        class Operator:
            def on_event(self, event, context):
                if event["type"] == "INPUT":
                    print(event["value"].to_pylist())
    """,
    )
    done = kernel.execute("%dora_start --wait --timeout 10")
    assert "src: finished, 0 received, 3 sent" in done.text


def test_export_writes_the_graph_and_says_what_it_wrote(kernel: Kernel, tmp_path) -> None:
    define(
        kernel,
        "%%dora_operator ticker --inputs tick=dora/timer/millis/10 --outputs n",
        "from dora import DoraStatus\n" + TICKER,
    )
    define(
        kernel,
        "%%dora_node sink --inputs n=ticker/n",
        """
        from dora import Node
        node = Node()
        for event in node:
            node.context.report_progress(50)
    """,
    )
    out = tmp_path / "out"
    result = kernel.execute(f"%dora_export {out}")
    assert result.text.splitlines() == [
        f"wrote {out / 'dataflow.yml'}, ticker.py, sink.py",
        f"run it with: dora run {out / 'dataflow.yml'}",
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        ".dora-notebook-export.json",
        "dataflow.yml",
        "sink.py",
        "ticker.py",
    ]
    assert (out / "ticker.py").read_text().startswith("from dora import DoraStatus\n" + TICKER)
    # A node given as a Python object cannot be exported: one line, no traceback.
    kernel.execute(
        "import dora_notebook\n"
        "class Double:\n"
        "    def on_event(self, event, send_output): pass\n"
        "dora_notebook.current().add_operator('double', Double)"
    )
    refused = kernel.execute(f"%dora_export {tmp_path / 'again'}", allow_error=True)
    assert refused.error is None
    assert refused.text.strip().startswith(
        "UsageError: cannot export node 'double': it is defined by a class (Double)"
    )
    assert len(refused.text.strip().splitlines()) == 1
    assert not (tmp_path / "again").exists()


def test_export_takes_paths_as_ipython_magics_do_and_never_replaces_a_users_file(
    kernel: Kernel, tmp_path: Path
) -> None:
    define(kernel, "%%dora_operator ticker --inputs t=dora/timer/millis/10", TICKER)
    spaced = tmp_path / "my dir"
    quoted = kernel.execute(f"%dora_export '{spaced}'")
    assert quoted.error is None and (spaced / "ticker.py").is_file()
    assert not any(p.name.startswith("'") for p in Path.cwd().iterdir())
    kernel.execute(f"import os; _home = os.environ['HOME']; os.environ['HOME'] = r'{tmp_path}'")
    try:
        tilde = kernel.execute("%dora_export ~/exported")
    finally:
        kernel.execute("os.environ['HOME'] = _home")
    assert tilde.error is None and (tmp_path / "exported" / "ticker.py").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "ticker.py").write_text("# my own work\n")
    (mine / "dataflow.yml").write_text("nodes: []  # mine\n")
    refused = kernel.execute(f'%dora_export "{mine}"', allow_error=True)
    lines = [x for x in refused.text.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("UsageError: cannot export to"), refused.text
    assert "it holds dataflow.yml, ticker.py, not written by dora-notebook" in lines[0]
    assert (mine / "ticker.py").read_text() == "# my own work\n"
    assert sorted(p.name for p in mine.iterdir()) == ["dataflow.yml", "ticker.py"]
    forced = kernel.execute(f"%dora_export {mine} --force")
    assert forced.error is None and "wrote" in forced.text
    assert (mine / "ticker.py").read_text() != "# my own work\n"
