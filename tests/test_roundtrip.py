"""Round trip: an exported dataflow loaded back is the same graph and runs the same.

A graph is built from cells (operators and custom nodes, with timers, a
queue size and a ``--machine``) and from a descriptor (a node with ``args``,
``env``, a long-form input, ``deploy`` and keys the embedded engine keeps
without using). It runs on the embedded engine, is exported, and the export
is loaded back with ``Dataflow.from_yaml`` or ``%dora_dataflow DIR/dataflow.yml``.
The reloaded graph must have the same nodes, kinds, inputs, outputs, queue
sizes, machines, env, args and extra keys, and its run must report exactly
what the original run reported (status, counters, progress, previews, logs).
"""

from __future__ import annotations

import difflib
import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dora_notebook import Dataflow

from .kernel import Kernel

ROOT = Path(__file__).resolve().parents[1]
#: Every run here ends by itself well within this many seconds.
RUN_TIMEOUT = 30.0


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- the graph -----------------------------------------------------------------------------

# A custom node with a docstring and a __future__ import (the export's header
# goes after them), sending on its timer's first tick.
SRC = dedent('''
    """Counts to five on the first tick."""
    from __future__ import annotations

    import pyarrow as pa
    from dora import Node

    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            for i in range(5):
                node.send_output("n", pa.array([i]), {"i": i})
            break
''')

# An operator using the whole context and a helper module of the working folder.
CALC = dedent("""
    import pandas as pd
    import scale


    class Operator:
        def __init__(self):
            self.seen = []

        def on_event(self, dora_event, context):
            if dora_event["type"] == "INPUT":
                n = dora_event["value"][0].as_py()
                self.seen.append(n)
                context.preview(pd.DataFrame({"n": self.seen}))
                context.report_progress(len(self.seen) * 20)
                context.output(scale.tens(n), "tens")
                context.outputs({"total": sum(self.seen)})
                context.logger.info("handled %d", n)
                print("printed", n, dora_event["metadata"].get("i"))
""")
SCALE = "def tens(n):\n    return n * 10\n"

# An operator on a timer that stops itself.
TICKER = dedent("""
    from dora import DoraStatus


    class Operator:
        def __init__(self):
            self.ticks = 0

        def on_event(self, dora_event, context):
            if dora_event["type"] == "INPUT":
                self.ticks += 1
                context.output(self.ticks, "count")
                if self.ticks == 3:
                    return DoraStatus.STOP
            return DoraStatus.CONTINUE
""")

# A custom node with two inputs; it shows what it got, input by input.
SINK = dedent("""
    from dora import Node

    node = Node()
    seen = {}
    for event in node:
        if event["type"] == "INPUT":
            seen.setdefault(event["id"], []).extend(event["value"].to_pylist())
    node.context.preview(seen, id="seen")
    node.context.send_message({"inputs": sorted(seen)})
    print("sink saw", sorted(seen))
""")

# A node from a descriptor, with a helper module beside it, args and env.
ECHO = dedent("""
    import os
    import sys

    import label
    from dora import Node

    node = Node()
    print("argv", sys.argv[1:], "env", os.environ.get("GREETING"), os.environ.get("NUMBER"))
    seen = {}
    for event in node:
        if event["type"] == "INPUT":
            seen.setdefault(event["id"], []).extend(event["value"].to_pylist())
    for input_id in sorted(seen):
        print(input_id, label.describe(seen[input_id]))
""")
LABEL = 'def describe(values):\n    return "got " + ",".join(map(str, values))\n'
ECHO_YAML = dedent("""
    nodes:
      - id: echo
        name: The echo
        description: prints what it got
        path: yaml/echo.py
        args: --label "two words"
        env:
          GREETING: hi
          NUMBER: 5
        inputs:
          tens:
            source: calc/tens
            queue_size: 7
          count: ticker/count
        deploy:
          machine: box-b
""")

#: The cells of the notebook version, in order (the descriptor's file is
#: relative to the kernel's working directory).
CELLS = [
    "%%dora_node src --inputs start=dora/timer/millis/20 --outputs n\n" + SRC,
    "%%dora_operator calc --inputs n=src/n --outputs tens total --machine box-a\n" + CALC,
    "%%dora_operator ticker --inputs tick=dora/timer/millis/10 --outputs count\n" + TICKER,
    "%%dora_node sink --inputs tens=calc/tens total=calc/total --queue-size 20\n" + SINK,
    "%%dora_dataflow\n" + ECHO_YAML,
]


def prepare(folder: Path) -> Path:
    """Write the files the graph needs from disk into ``folder``; return it."""
    (folder / "yaml").mkdir(parents=True)
    (folder / "scale.py").write_text(SCALE)
    (folder / "yaml" / "echo.py").write_text(ECHO)
    (folder / "yaml" / "label.py").write_text(LABEL)
    return folder


def build() -> Dataflow:
    """The graph of :data:`CELLS`, through the Python API (run in the prepared folder)."""
    flow = Dataflow(echo=False)
    flow.add_node("src", SRC, inputs={"start": "dora/timer/millis/20"}, outputs=["n"])
    flow.add_operator(
        "calc", CALC, inputs={"n": "src/n"}, outputs=["tens", "total"], machine="box-a"
    )
    flow.add_operator("ticker", TICKER, inputs={"tick": "dora/timer/millis/10"}, outputs=["count"])
    flow.add_node("sink", SINK, inputs=["tens=calc/tens", "total=calc/total"], queue_size=20)
    flow.load_yaml(ECHO_YAML)
    return flow


# -- what is compared ---------------------------------------------------------------------


def shape(flow: Dataflow) -> dict[str, Any]:
    """The graph as plain data: everything of a node but where its code comes from."""
    nodes = {}
    for spec in flow.graph:
        nodes[spec.id] = {
            "kind": spec.kind,
            "inputs": {k: [v.source, v.queue_size] for k, v in spec.inputs.items()},
            "outputs": list(spec.outputs),
            "machine": spec.machine,
            "env": dict(spec.env),
            "args": list(spec.args),
            "extra": spec.extra,
        }
    return {"order": [spec.id for spec in flow.graph], "nodes": nodes}


def results(flow: Dataflow) -> dict[str, Any]:
    """What every node of the last run reported, as plain data (times left out)."""
    found = {}
    for spec in flow.graph:
        state = flow.node(spec.id)
        found[spec.id] = {
            "status": state.status,
            "received": state.received,
            "sent": state.sent,
            "dropped": state.dropped,
            "progress": state.progress,
            "previews": state.previews,
            "logs": [[line.stdio, line.text] for line in state.logs],
            "messages": state.messages,
            "warnings": state.warnings,
            "errors": state.errors,
        }
    return json.loads(json.dumps(found))


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def file_diff(first: dict[str, bytes], second: dict[str, bytes]) -> str:
    """How two exports differ, file by file, for a failure message."""
    lines = [f"only in one: {sorted(set(first) ^ set(second))}"]
    for name in sorted(set(first) & set(second)):
        if first[name] != second[name]:
            lines += difflib.unified_diff(
                first[name].decode().splitlines(),
                second[name].decode().splitlines(),
                f"first/{name}",
                f"second/{name}",
                lineterm="",
            )
    return "\n".join(lines)


def assert_expected_run(found: dict[str, Any]) -> None:
    """What the graph reports when it runs as it should (on either side of the trip)."""
    assert {k: v["status"] for k, v in found.items()} == dict.fromkeys(
        ["src", "calc", "ticker", "sink", "echo"], "finished"
    ), found
    assert found["calc"]["previews"]["default"]["data"]["rows"] == [[0], [1], [2], [3], [4]]
    assert found["calc"]["progress"] == 100.0
    assert found["sink"]["previews"]["seen"]["data"] == {
        "tens": [0, 10, 20, 30, 40],
        "total": [0, 1, 3, 6, 10],
    }
    assert found["echo"]["logs"] == [
        ["stdout", "argv ['--label', 'two words'] env hi 5"],
        ["stdout", "count got 1,2,3"],
        ["stdout", "tens got 0,10,20,30,40"],
    ]
    assert [found[n]["received"] for n in ("src", "calc", "ticker", "sink", "echo")] == [
        1,
        5,
        3,
        10,
        8,
    ]


def assert_same_graph(original: dict[str, Any], reloaded: dict[str, Any]) -> None:
    assert reloaded == original, "\n".join(
        difflib.unified_diff(
            json.dumps(original, indent=1, sort_keys=True).splitlines(),
            json.dumps(reloaded, indent=1, sort_keys=True).splitlines(),
            "original",
            "reloaded",
            lineterm="",
        )
    )


EXPECTED_SHAPE = {
    "order": ["src", "calc", "ticker", "sink", "echo"],
    "nodes": {
        "src": {
            "kind": "node",
            "inputs": {"start": ["dora/timer/millis/20", None]},
            "outputs": ["n"],
            "machine": None,
            "env": {},
            "args": [],
            "extra": {},
        },
        "calc": {
            "kind": "operator",
            "inputs": {"n": ["src/n", None]},
            "outputs": ["tens", "total"],
            "machine": "box-a",
            "env": {},
            "args": [],
            "extra": {},
        },
        "ticker": {
            "kind": "operator",
            "inputs": {"tick": ["dora/timer/millis/10", None]},
            "outputs": ["count"],
            "machine": None,
            "env": {},
            "args": [],
            "extra": {},
        },
        "sink": {
            "kind": "node",
            "inputs": {"tens": ["calc/tens", 20], "total": ["calc/total", 20]},
            "outputs": [],
            "machine": None,
            "env": {},
            "args": [],
            "extra": {},
        },
        "echo": {
            "kind": "node",
            "inputs": {"tens": ["calc/tens", 7], "count": ["ticker/count", None]},
            "outputs": [],
            "machine": "box-b",
            "env": {"GREETING": "hi", "NUMBER": "5"},
            "args": ["--label", "two words"],
            "extra": {"name": "The echo", "description": "prints what it got"},
        },
    },
}


@pytest.fixture
def own_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep what the embedded engine adds to ``sys.path`` and ``sys.modules`` to this test.

    The engine puts node folders on the module path and keeps the helper
    modules nodes import (``scale``, ``label``) in ``sys.modules``.
    """
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    forget_modules_under(tmp_path)


def forget_modules_under(folder: Path) -> None:
    """Drop from ``sys.modules`` the modules loaded from files under ``folder``."""
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).is_relative_to(folder):
            del sys.modules[name]


def run(flow: Dataflow) -> dict[str, Any]:
    """Run ``flow`` on the embedded engine until it ends; return :func:`results`."""
    flow.start()
    try:
        assert flow.wait(RUN_TIMEOUT), "the graph did not finish by itself"
    finally:
        assert flow.stop() == []
    return results(flow)


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.usefixtures("own_imports")
def test_a_reloaded_export_is_the_same_graph_and_runs_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python API: export, ``Dataflow.from_yaml``, same graph, same run.

    The original working folder is deleted (and its helper modules
    forgotten) before the export is loaded: the reloaded graph runs from the
    exported folder alone.
    """
    work = prepare(tmp_path / "work")
    monkeypatch.chdir(work)
    flow = build()
    original_shape = shape(flow)
    assert original_shape == EXPECTED_SHAPE
    original = run(flow)
    assert_expected_run(original)

    descriptor = flow.export(tmp_path / "exported")
    exported = yaml.safe_load(descriptor.read_text())
    deploy = {n["id"]: n.get("deploy") for n in exported["nodes"]}
    assert deploy == {
        "src": None,
        "calc": {"machine": "box-a"},
        "ticker": None,
        "sink": None,
        "echo": {"machine": "box-b"},
    }
    monkeypatch.chdir(tmp_path)
    shutil.rmtree(work)
    forget_modules_under(work)

    again = Dataflow.from_yaml(descriptor, echo=False)
    assert_same_graph(original_shape, shape(again))
    # Cells came back as files of the export: operators stay operators.
    assert {s.id: s.path.relative_to(descriptor.parent).as_posix() for s in again.graph} == {
        "src": "src.py",
        "calc": "calc.py",
        "ticker": "ticker.py",
        "sink": "sink.py",
        "echo": "echo.py",
    }
    assert run(again) == original
    # load_yaml into an empty Dataflow is the same as from_yaml.
    loaded = Dataflow(echo=False)
    assert loaded.load_yaml(descriptor) == original_shape["order"]
    assert_same_graph(original_shape, shape(loaded))


@pytest.mark.usefixtures("own_imports")
def test_export_reload_export_gives_identical_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exporting a reloaded export writes byte-identical files.

    Decided: this must hold. An export copies the file of every path-based
    node unchanged and names it after that file, so the reloaded nodes
    (whose files the first export named ``<id>.py``, or after their own
    file) get the same names and bytes again; helper modules beside them are
    copied again under their own names; and ``dataflow.yml`` is written from
    a graph that is the same (see the test above), including the keys the
    engine keeps without using. So the second export can only differ where
    the first one said something about the graph's origin, such as its
    header comment saying that node files written from cells need
    dora-notebook installed: those reloaded files are still the cells' files
    and still import ``dora_notebook.dora_rs.shim``, so the note remains true and
    must stay.
    """
    monkeypatch.chdir(prepare(tmp_path / "work"))
    first = build().export(tmp_path / "first")
    second = Dataflow.from_yaml(first, echo=False).export(tmp_path / "second")
    third = Dataflow.from_yaml(second, echo=False).export(tmp_path / "third")
    one, two, three = (files_of(p.parent) for p in (first, second, third))
    assert sorted(one) == [
        ".dora-notebook-export.json",
        "calc.py",
        "dataflow.yml",
        "echo.py",
        "label.py",
        "scale.py",
        "sink.py",
        "src.py",
        "ticker.py",
    ]
    assert two == three, file_diff(two, three)
    assert one == two, file_diff(one, two)


def test_round_trip_in_a_kernel(tmp_path: Path) -> None:
    """The notebook way: cells, ``%dora_export``, ``%dora_reset``, ``%dora_dataflow``.

    Both runs use ``%dora_start --wait``; the graph, the ``--wait`` summary and
    everything the nodes reported must be the same before and after the trip,
    and exporting the reloaded graph again gives the same files (see
    :func:`test_export_reload_export_gives_identical_files`).
    """
    work = prepare(tmp_path / "work")
    kernel = Kernel()
    try:
        kernel.execute("%load_ext dora_notebook")
        kernel.execute(
            f"import json, os, sys\nos.chdir({str(work)!r})\nsys.path.insert(0, {str(ROOT)!r})\n"
            "from dora_notebook import current\n"
            "from tests.test_roundtrip import results, shape"
        )
        panels = [len(kernel.execute(cell).widget_ids()) for cell in CELLS]
        before = json.loads(kernel.execute("print(json.dumps(shape(current())))").text)
        first_run = kernel.execute(f"%dora_start --wait --timeout {RUN_TIMEOUT:g}", timeout=60)
        original = json.loads(kernel.execute("print(json.dumps(results(current())))").text)
        exported = kernel.execute("%dora_export exported").text
        reset = kernel.execute("%dora_reset").text
        emptied = kernel.execute("print(len(current().graph))").text
        loaded = kernel.execute("%dora_dataflow exported/dataflow.yml")
        after = json.loads(kernel.execute("print(json.dumps(shape(current())))").text)
        paths = kernel.execute("print(sorted({str(s.path.parent) for s in current().graph}))")
        second_run = kernel.execute(f"%dora_start --wait --timeout {RUN_TIMEOUT:g}", timeout=60)
        reloaded = json.loads(kernel.execute("print(json.dumps(results(current())))").text)
        kernel.execute("%dora_export again")
        kernel.execute("%dora_reset")
    finally:
        kernel.shutdown()
    assert panels == [1, 1, 1, 1, 1]
    assert before == EXPECTED_SHAPE
    assert_expected_run(original)
    summary = [
        "src: finished, 1 received, 5 sent",
        "calc: finished, 5 received, 10 sent",
        "ticker: finished, 3 received, 3 sent",
        "sink: finished, 10 received, 0 sent",
        "echo: finished, 8 received, 0 sent",
    ]
    assert first_run.text.splitlines() == summary
    assert exported.startswith(f"wrote {(work / 'exported' / 'dataflow.yml').resolve()}, ")
    assert reset.strip() == "reset" and emptied.strip() == "0"
    assert len(loaded.widget_ids()) == 5  # one panel per node of the descriptor
    assert_same_graph(before, after)
    assert paths.text.strip() == repr([str((work / "exported").resolve())])
    assert second_run.text.splitlines() == summary
    assert reloaded == original
    first, second = files_of(work / "exported"), files_of(work / "again")
    assert first == second, file_diff(first, second)
