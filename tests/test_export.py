"""Export: the folder layout, determinism, path safety, refusals, secrets, the notebook
reader and the CLI, and exported dataflows run for real under ``dora run`` and
``dora-notebook run``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml

from dora_notebook import Dataflow, DoraStatus, GraphError
from dora_notebook.cli import main
from dora_notebook.core.yaml12 import load as load_yaml12
from dora_notebook.dora_rs.export import render, write_files
from dora_notebook.dora_rs.shim import parse_report
from dora_notebook.jupyter.notebook import dataflow_from_notebook

from .needs import needs_dora
from .sessions import run_in_session

# dora spawns `python` for nodes: the interpreter running the tests comes first.
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- a graph with every kind of node -----------------------------------------------------

# dora-rs drops messages sent before every node is connected, and can lose one
# that follows the first message on a connection too closely: the source waits
# for a first tick, sends one value alone, settles, then sends the rest, and
# lingers so that the closing of its output does not overtake the last values.
SOURCE = dedent("""
    '''Counts to five.'''
    from __future__ import annotations

    import time

    import pyarrow as pa
    from dora import Node

    node = Node()
    for event in node:
        if event["type"] == "INPUT" and event["id"] == "start":
            time.sleep(0.5)
            for i in range(5):
                node.send_output("n", pa.array([i]), {"i": i})
                time.sleep(0.5 if i == 0 else 0.05)
            time.sleep(0.5)
            break
""")

CALC = dedent("""
    import pandas as pd
    from dora import DoraStatus


    class Operator:
        def __init__(self):
            self.seen = []

        def on_event(self, dora_event, context):
            if dora_event["type"] == "INPUT":
                self.seen.append(dora_event["value"][0].as_py())
                context.preview(pd.DataFrame({"n": self.seen}))
                context.report_progress(len(self.seen) * 20)
                context.output(self.seen[-1] * 10, "tens")
                context.outputs({"total": sum(self.seen)})
                context.logger.info("handled %d", self.seen[-1])
                print("printed", self.seen[-1])
            return DoraStatus.CONTINUE
""")

# Stops itself with oocana's done() after three inputs; returns nothing (None).
STOPPER = dedent("""
    import json, os


    class Operator:
        def __init__(self):
            os.makedirs("out", exist_ok=True)
            self.file = open("out/stopper.jsonl", "w")

        def on_event(self, dora_event, context):
            self.file.write(json.dumps([dora_event["type"], dora_event.get("id")]) + "\\n")
            self.file.flush()
            if dora_event["type"] == "INPUT" and len(context.inputs["n"]) and (
                dora_event["value"][0].as_py() == 2
            ):
                context.done()
""")

SINK = dedent("""
    import json, os

    from dora import Node

    node = Node()
    os.makedirs("out", exist_ok=True)
    with open("out/sink.jsonl", "w") as file:
        for event in node:
            record = {"type": event["type"], "id": event.get("id")}
            if event["type"] == "INPUT":
                record["value"] = event["value"].to_pylist()
                record["i"] = event["metadata"].get("i")
                if event["id"] == "total" and record["value"] == [10]:
                    node.context.send_message({"all": sorted(node.context.inputs)})
            file.write(json.dumps(record) + "\\n")
            file.flush()
""")

# A node loaded from a descriptor, with a helper module beside it, args and env.
ECHO = dedent("""
    import json, os, sys

    import label
    from dora import Node

    node = Node()
    os.makedirs("out", exist_ok=True)
    with open("out/echo.jsonl", "w") as file:
        file.write(json.dumps({"argv": sys.argv[1:], "env": os.environ.get("GREETING")}) + "\\n")
        for event in node:
            if event["type"] == "INPUT":
                file.write(json.dumps(label.describe(event["value"].to_pylist())) + "\\n")
                file.flush()
""")
LABEL = 'def describe(values):\n    return "tens " + ",".join(map(str, values))\n'
ECHO_YAML = dedent("""
    nodes:
      - id: echo
        path: echo.py
        args: --label "two words"
        env:
          GREETING: hi
        inputs:
          tens: calc/tens
""")


def full_flow(tmp_path: Path) -> Dataflow:
    folder = tmp_path / "yaml"
    folder.mkdir(exist_ok=True)
    (folder / "echo.py").write_text(ECHO)
    (folder / "label.py").write_text(LABEL)
    (folder / "dataflow.yml").write_text(ECHO_YAML)
    flow = Dataflow(echo=False)
    flow.add_node("src", SOURCE, inputs={"start": "dora/timer/millis/50"}, outputs=["n"])
    flow.add_operator("calc", CALC, inputs={"n": "src/n"}, outputs=["tens", "total"])
    flow.add_operator("stopper", STOPPER, inputs={"n": "src/n"})
    flow.add_node("sink", SINK, inputs={"tens": "calc/tens", "total": "calc/total"})
    flow.load_yaml(folder / "dataflow.yml")
    return flow


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- layout --------------------------------------------------------------------------------


def test_layout_descriptor_and_node_files(tmp_path: Path) -> None:
    flow = full_flow(tmp_path)
    out = tmp_path / "out"
    descriptor = flow.export(out)
    assert descriptor == (out / "dataflow.yml").resolve()
    assert sorted(files_of(out)) == [
        ".dora-notebook-export.json",
        "calc.py",
        "dataflow.yml",
        "echo.py",
        "label.py",
        "sink.py",
        "src.py",
        "stopper.py",
    ]
    text = descriptor.read_text()
    assert text.startswith("# Exported by dora-notebook.")
    nodes = {n["id"]: n for n in yaml.safe_load(text)["nodes"]}
    assert nodes["src"] == {
        "id": "src",
        "path": "src.py",
        "inputs": {"start": "dora/timer/millis/50"},
        "outputs": ["n"],
    }
    assert nodes["calc"] == {
        "id": "calc",
        "operator": {"python": "calc.py", "inputs": {"n": "src/n"}, "outputs": ["tens", "total"]},
    }
    assert nodes["echo"] == {
        "id": "echo",
        "path": "echo.py",
        "args": "--label 'two words'",
        "inputs": {"tens": "calc/tens"},
        "env": {"GREETING": "hi"},
    }
    # Files from disk are copied unchanged, helper module included.
    assert (out / "echo.py").read_text() == ECHO and (out / "label.py").read_text() == LABEL
    # An operator cell: its code unchanged, then the footer that wraps Operator.
    calc = (out / "calc.py").read_text()
    assert calc.startswith(CALC)
    assert calc.rstrip().endswith(
        'Operator = dora_notebook.dora_rs.shim.operator(Operator, node_id="calc", '
        'outputs=["tens", "total"])'
    )
    # A node cell: the header after the docstring and __future__ import, then the code.
    src = (out / "src.py").read_text()
    head, _, rest = src.partition("import dora_notebook.dora_rs.shim\n")
    assert head.startswith("'''Counts to five.'''\nfrom __future__ import annotations\n")
    assert 'use_context_node(node_id="src", outputs=["n"])' in rest
    lines = SOURCE.splitlines(keepends=True)
    assert src.startswith("".join(lines[:2])) and src.endswith("".join(lines[2:]))
    compile(src, "src.py", "exec")
    # The export reads back as the same graph.
    again = Dataflow.from_yaml(descriptor, echo=False)
    assert [s.id for s in again.graph] == [s.id for s in flow.graph]
    assert again.graph["echo"].args == ["--label", "two words"]
    assert again.graph["calc"].outputs == ["tens", "total"]


def test_queue_sizes_timers_and_machines_go_into_the_descriptor(tmp_path: Path) -> None:
    flow = Dataflow(echo=False)
    flow.add_node("cam", "pass\n", inputs={"tick": "dora/timer/hz/30"}, outputs=["image"])
    flow.add_operator(
        "detect",
        "class Operator:\n    pass\n",
        inputs={"image": "cam/image"},
        outputs=["boxes"],
        queue_size=1,
        machine="gpu-box",
    )
    flow.export(tmp_path)
    text = (tmp_path / "dataflow.yml").read_text()
    assert "dora start dataflow.yml" in text  # a note on running placed nodes
    detect = yaml.safe_load(text)["nodes"][1]
    assert detect == {
        "id": "detect",
        "operator": {
            "python": "detect.py",
            "inputs": {"image": {"source": "cam/image", "queue_size": 1}},
            "outputs": ["boxes"],
        },
        "deploy": {"machine": "gpu-box"},
    }


def test_yaml_1_2_readers_see_the_same_env_values(tmp_path: Path) -> None:
    (tmp_path / "n.py").write_text("pass\n")
    (tmp_path / "in.yml").write_text(
        "env:\n  TOP: '1e3'\nnodes:\n  - id: n\n    path: n.py\n"
        "    env: {OCT: '0o17', EXP: '1e3', WORD: 'yes', NUM: 5}\n"
    )
    flow = Dataflow.from_yaml(tmp_path / "in.yml", echo=False)
    flow.export(tmp_path / "out")
    exported = load_yaml12((tmp_path / "out" / "dataflow.yml").read_text())
    assert exported["env"] == {"TOP": "1e3"}
    assert exported["nodes"][0]["env"] == {"OCT": "0o17", "EXP": "1e3", "WORD": "yes", "NUM": "5"}


def test_file_names_never_clash_and_never_hide_modules(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "sink.py").write_text(f"# sink of {folder}\n")
    (tmp_path / "a" / "shared.py").write_text("# used by two nodes\n")
    flow = Dataflow(echo=False)
    flow.add_node("one", Path(tmp_path / "a" / "sink.py"))
    flow.add_node("two", Path(tmp_path / "b" / "sink.py"))
    flow.add_node("three", Path(tmp_path / "a" / "shared.py"))
    flow.add_node("four", Path(tmp_path / "a" / "shared.py"))
    op = "class Operator:\n    pass\n"
    flow.add_operator("json", op)  # the standard library's json
    flow.add_operator("pandas", op)  # an installed package
    flow.add_operator("tools", op)  # a module another node imports
    flow.add_operator("Sink", op)  # sink.py, on a case-insensitive file system
    flow.add_node("user", "import tools\n")
    files = render(flow.graph)
    descriptor = yaml.safe_load(files["dataflow.yml"])
    names = {n["id"]: n.get("path") or n["operator"]["python"] for n in descriptor["nodes"]}
    assert names == {
        "one": "sink_one.py",
        "two": "sink_two.py",
        "three": "shared.py",
        "four": "shared.py",
        "json": "json_operator.py",
        "pandas": "pandas_operator.py",
        "tools": "tools_operator.py",
        "Sink": "Sink.py",
        "user": "user.py",
    }
    assert files["sink_one.py"] == b"# sink of a\n" and files["sink_two.py"] == b"# sink of b\n"


def test_helper_modules_with_one_name_and_two_contents_are_refused(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "util.py").write_text(f"WHO = {folder!r}\n")
        (tmp_path / folder / f"{folder}.py").write_text("import util\n")
    flow = Dataflow(echo=False)
    flow.add_node("a", Path(tmp_path / "a" / "a.py"))
    flow.add_node("b", Path(tmp_path / "b" / "b.py"))
    with pytest.raises(GraphError, match="node 'a' and node 'b' import different modules"):
        render(flow.graph)


# -- determinism ---------------------------------------------------------------------------


def test_exporting_twice_gives_identical_files(tmp_path: Path) -> None:
    flow = full_flow(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    flow.export(first)
    flow.export(second)
    assert files_of(first) == files_of(second)
    before = files_of(first)
    flow.export(first)  # over itself
    assert files_of(first) == before
    assert b"\r" not in before["dataflow.yml"]


def test_export_does_not_depend_on_hash_seeds(tmp_path: Path) -> None:
    """Two processes with different hash seeds write the same bytes."""
    full_flow(tmp_path)  # writes the YAML folder
    script = dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from pathlib import Path
        from tests.test_export import full_flow
        full_flow(Path(sys.argv[1])).export(sys.argv[2])
    """)
    for seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), str(tmp_path / f"seed{seed}")],
            check=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
    assert files_of(tmp_path / "seed1") == files_of(tmp_path / "seed2")


# -- safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.py", "sub/x.py", "", ".", "..", "a\\b.py", "/abs.py"])
def test_files_never_escape_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(GraphError, match="not a plain file name"):
        write_files({"dataflow.yml": b"nodes: []\n", name: b"x"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything is written
    assert not (tmp_path / "evil.py").exists()


def test_a_symlink_in_the_folder_is_refused_or_replaced_never_written_through(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "calc.py").symlink_to(outside)
    flow = Dataflow(echo=False)
    flow.add_operator("calc", "class Operator:\n    pass\n")
    with pytest.raises(GraphError, match=r"it holds calc\.py, not written by dora-notebook"):
        flow.export(out)
    assert (out / "calc.py").is_symlink() and outside.read_text() == "precious\n"
    flow.export(out, force=True)
    assert outside.read_text() == "precious\n"
    assert not (out / "calc.py").is_symlink()
    assert (out / "calc.py").read_text().startswith("class Operator:")


def test_the_target_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    flow = Dataflow(echo=False)
    flow.add_operator("calc", "class Operator:\n    pass\n")
    with pytest.raises(GraphError, match="is not a folder"):
        flow.export(tmp_path / "file")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "calc.py").mkdir()
    with pytest.raises(GraphError, match="exists and is not a file"):
        flow.export(tmp_path / "out")


def test_secrets_of_the_environment_are_not_exported(tmp_path: Path, monkeypatch) -> None:
    secret = "s3cr3t-token-9f2c1d"
    monkeypatch.setenv("DORA_NOTEBOOK_TEST_SECRET", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    flow = full_flow(tmp_path)
    flow.add_node(
        "reader",
        "import os\nprint(os.environ.get('DORA_NOTEBOOK_TEST_SECRET'))\n",
    )
    out = tmp_path / "out"
    flow.export(out)
    for name, data in files_of(out).items():
        assert secret.encode() not in data, name
        assert b"AWS_SECRET_ACCESS_KEY" not in data, name
    assert yaml.safe_load((out / "dataflow.yml").read_text())["nodes"][4]["env"] == {
        "GREETING": "hi"  # the node's declared env, nothing else
    }


# -- refusals --------------------------------------------------------------------------------


class Double:
    def on_event(self, dora_event, send_output):
        return DoraStatus.CONTINUE


@pytest.mark.parametrize(
    ("add", "message"),
    [
        (
            lambda flow: flow.add_operator("double", Double),
            r"cannot export node 'double': it is defined by a class \(Double\)",
        ),
        (
            lambda flow: flow.add_node("feeder", lambda: None),
            r"cannot export node 'feeder': it is defined by a Python object",
        ),
        (
            lambda flow: flow.add_operator("broken", "class Operator(:\n"),
            r"cannot export node 'broken': SyntaxError: .* \(line 1\)",
        ),
        (
            lambda flow: flow.add_operator("nameless", "class Other:\n    pass\n"),
            r"cannot export node 'nameless': its code does not define `class Operator`",
        ),
    ],
)
def test_what_cannot_be_exported_is_refused_before_writing(tmp_path: Path, add, message) -> None:
    flow = Dataflow(echo=False)
    flow.add_operator("fine", "class Operator:\n    pass\n")
    add(flow)
    with pytest.raises(GraphError, match=message):
        flow.export(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_empty_or_invalid_graph_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="the dataflow has no nodes"):
        Dataflow(echo=False).export(tmp_path)
    flow = Dataflow(echo=False)
    flow.add_operator("a", "class Operator:\n    pass\n", inputs={"x": "ghost/out"})
    with pytest.raises(GraphError, match="unknown source node 'ghost'"):
        flow.export(tmp_path)


# -- notebooks and the CLI ------------------------------------------------------------------------

NB_SOURCE = dedent("""
    import time
    import pyarrow as pa
    from dora import Node

    node = Node()
    for event in node:
        if event["type"] == "INPUT":
            time.sleep(0.5)
            for i in range(3):
                node.send_output("n", pa.array([i]))
                time.sleep(0.5 if i == 0 else 0.05)
            time.sleep(0.5)
            break
""")
NB_TWICE = dedent("""
    class Operator:
        def on_event(self, dora_event, context):
            if dora_event["type"] == "INPUT":
                context.output(dora_event["value"][0].as_py() * 2, "out")
                context.report_progress(50)
""")
NB_RECORDER = dedent("""
    import json, os
    from dora import Node

    node = Node()
    os.makedirs("out", exist_ok=True)
    with open("out/rec.jsonl", "w") as file:
        for event in node:
            if event["type"] == "INPUT":
                file.write(json.dumps(event["value"].to_pylist()) + "\\n")
                file.flush()
""")


def write_notebook(folder: Path, cells: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# a dataflow")] + [
        nbformat.v4.new_code_cell(cell) for cell in cells
    ]
    path = folder / "flow.ipynb"
    nbformat.write(notebook, path)
    return path


def demo_notebook(folder: Path) -> Path:
    (folder / "nodes").mkdir(parents=True)
    (folder / "nodes" / "rec.py").write_text(NB_RECORDER)
    return write_notebook(
        folder,
        [
            "%load_ext dora_notebook",
            "\n%%dora_node src --inputs start=dora/timer/millis/50 --outputs n\n" + NB_SOURCE,
            "%%dora_operator twice --inputs n=src/n --outputs wrong\nclass Operator: pass\n",
            # Re-running a definition redefines the node: the last one counts.
            "%%dora_operator twice --inputs n=src/n --outputs out\n" + NB_TWICE,
            "%%dora_dataflow\nnodes:\n  - id: rec\n    path: nodes/rec.py\n"
            "    inputs: {x: twice/out}\n",
            "%dora_start --wait --timeout 30",
        ],
    )


def test_a_notebooks_magics_define_the_graph(tmp_path: Path) -> None:
    path = demo_notebook(tmp_path / "nb")
    flow = dataflow_from_notebook(path)
    assert [s.id for s in flow.graph] == ["src", "twice", "rec"]
    assert flow.graph["src"].source == NB_SOURCE and flow.graph["src"].kind == "node"
    assert flow.graph["twice"].source == NB_TWICE and flow.graph["twice"].outputs == ["out"]
    assert flow.graph["rec"].path == (tmp_path / "nb" / "nodes" / "rec.py").resolve()


def test_dataflow_lines_and_reset_are_followed(tmp_path: Path) -> None:
    folder = tmp_path / "nb"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.py").write_text("pass\n")
    (folder / "sub" / "flow.yml").write_text("nodes:\n  - id: a\n    path: a.py\n")
    path = write_notebook(
        folder,
        [
            "%%dora_operator gone\nclass Operator: pass\n",
            "x = 1\n%dora_reset\n",
            "import os\n%dora_dataflow sub/flow.yml\nprint('loaded')\n",
            "%%dora_operator b --queue-size 2 --machine m1 --inputs x=a/out\n"
            "class Operator: pass\n",
        ],
    )
    (folder / "sub" / "flow.yml").write_text(
        "nodes:\n  - id: a\n    path: a.py\n    outputs: [out]\n"
    )
    flow = dataflow_from_notebook(path)
    assert [s.id for s in flow.graph] == ["a", "b"]
    assert flow.graph["b"].inputs["x"].queue_size == 2 and flow.graph["b"].machine == "m1"


def test_the_cli_exports_a_notebook(tmp_path: Path, capsys) -> None:
    path = demo_notebook(tmp_path / "nb")
    assert main(["export", str(path), str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {(tmp_path / 'out' / 'dataflow.yml').resolve()}, src.py")
    assert "run it with: dora run" in out
    assert sorted(files_of(tmp_path / "out")) == [
        ".dora-notebook-export.json",
        "dataflow.yml",
        "rec.py",
        "src.py",
        "twice.py",
    ]
    assert (tmp_path / "out" / "rec.py").read_text() == NB_RECORDER


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (
            "%%dora_operator a --bogus\nclass Operator: pass\n",
            "flow.ipynb, cell 2: unrecognized arguments: --bogus",
        ),
        (
            "%%dora_node a --queue-size 0\npass\n",
            "flow.ipynb, cell 2: --queue-size must be at least 1, not 0",
        ),
        ("%%dora_operator a/b\nclass Operator: pass\n", "flow.ipynb, cell 2: invalid node id"),
        ("%dora_dataflow missing.yml", "flow.ipynb, cell 2: descriptor file"),
        ("%dora_dataflow", "flow.ipynb, cell 2: %dora_dataflow needs a descriptor PATH"),
        ("%%dora_dataflow x.yml\nnodes: []\n", "flow.ipynb, cell 2: give either"),
        ("%%dora_node a 'unbalanced\npass\n", "flow.ipynb, cell 2: No closing quotation"),
        ("%%dora_operator a\nclass Operator(:\n", "flow.ipynb, cell 2: node 'a': SyntaxError"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, capsys, cell: str, message: str) -> None:
    path = write_notebook(tmp_path, [cell])
    assert main(["export", str(path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dora-notebook: "), err
    assert message in err


def test_cli_refuses_what_is_not_a_notebook(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "nope.ipynb"), str(tmp_path / "out")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.ipynb").write_text("{not json")
    assert main(["export", str(tmp_path / "bad.ipynb"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dora-notebook: bad.ipynb is not a readable notebook")
    assert err.count("\n") == 1


LINES = [
    "sensor",
    "sensor --inputs tick=dora/timer/millis/50 --outputs reading",
    "a --inputs x=b/y --inputs z=c/w --outputs o1 o2 --queue-size 3 --machine m",
    "a --inp x=b/y --out o",  # abbreviations
    "a --inputs 'x=b/y'",  # quotes are kept, as IPython's splitting keeps them
    "a --queue-size=4",
    "a --bogus",
    "a --queue-size many",
    "",
    "a b",
]


@pytest.mark.parametrize("line", LINES)
def test_the_cli_and_the_magics_read_a_line_the_same_way(line: str) -> None:
    from IPython.core.error import UsageError

    from dora_notebook.jupyter import arguments as magic_args
    from dora_notebook.jupyter.magics import DoraMagics

    def outcome(parse) -> Any:
        try:
            return vars(parse(line))
        except (UsageError, magic_args.ArgumentError) as exc:
            return f"error: {exc}"

    for name in ("dora_operator", "dora_node"):
        magic = getattr(DoraMagics, name)
        assert outcome(lambda text, n=name: magic_args.parse(n, text)) == outcome(
            magic.parser.parse_argstring
        )


# -- running exported dataflows for real -------------------------------------------------------


def run(command: list[str], folder: Path, timeout: float = 60) -> tuple[int, str]:
    """Run ``command`` in ``folder`` in a session of its own; return (rc, console)."""
    env = {**os.environ, "PATH": PATH, "NO_COLOR": "1", "RUST_BACKTRACE": "0"}
    done = run_in_session(command, folder, env, timeout)
    if done.returncode is None:
        pytest.fail(f"{command} did not end within {timeout} s:\n{done.console[-4000:]}")
    return done.returncode, done.console


def dora_run(folder: Path, check: Callable[[str], None], attempts: int = 2) -> str:
    """``dora run`` the export in ``folder`` until ``check(console)`` passes; return the console.

    On a busy machine dora-rs loses a message now and then (see the
    conformance suite), so a failed check runs dora again, once.
    """
    for attempt in range(1, attempts + 1):
        shutil.rmtree(folder / "out", ignore_errors=True)
        rc, console = run([needs_dora(), "run", "dataflow.yml", "--stop-after", "20s"], folder)
        try:
            assert rc == 0, console[-4000:]
            check(console)
            return console
        except AssertionError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def notebook_run(folder: Path) -> tuple[int, str]:
    code = "import sys; del sys.path[0]; from dora_notebook.cli import main; sys.exit(main())"
    return run([sys.executable, "-c", code, "run", "dataflow.yml", "--stop-after", "20"], folder)


def records(folder: Path) -> dict[str, list[Any]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for path in sorted((folder / "out").glob("*.jsonl"))
    }


def reports(console: str) -> list[dict[str, Any]]:
    return [r for r in map(parse_report, console.splitlines()) if r is not None]


def by_input(events: list[dict[str, Any]]) -> dict[str, list[Any]]:
    split: dict[str, list[Any]] = {}
    for event in events:
        if event["type"] == "INPUT":
            split.setdefault(event["id"], []).append((event["value"], event["i"]))
    return split


def check_records(got: dict[str, list[Any]], engine: str, console: str) -> None:
    where = f"{engine}:\n{console[-3000:]}"
    assert sorted(got) == ["echo", "sink", "stopper"], where
    assert by_input(got["sink"]) == {
        "tens": [([i * 10], i) for i in range(5)],
        "total": [([sum(range(i + 1))], i) for i in range(5)],
    }, where
    assert got["sink"][-1] == {"type": "STOP", "id": "ALL_INPUTS_CLOSED"}, where
    # done() stopped the operator after its third input.
    assert got["stopper"] == [["INPUT", "n"]] * 3, where
    assert got["echo"] == [
        {"argv": ["--label", "two words"], "env": "hi"},
        *[f"tens {i * 10}" for i in range(5)],
    ], where


def check_dora_console(console: str) -> None:
    """The context's reports are JSON lines in dora's log, under the node's name."""
    assert "stdout calc: printed 4" in console
    assert "stdout calc: [dora-notebook] {" in console
    seen = reports(console)
    calc = [r for r in seen if r["node"] == "calc"]
    previews = [r["data"] for r in calc if r["kind"] == "preview"]
    assert previews[-1] == {
        "slot": "default",
        "payload": {
            "type": "table",
            "data": {"columns": ["n"], "rows": [[i] for i in range(5)], "row_count": 5},
        },
    }
    progress = [r["data"] for r in calc if r["kind"] == "progress"]
    assert progress[-1] == 100.0 and progress == sorted(progress)
    logs = [r["data"] for r in calc if r["kind"] == "log"]
    assert [(d["line"], d["stdio"]) for d in logs if d["line"] == "handled 4"] == [
        ("handled 4", "info")
    ]
    assert {"kind": "message", "node": "sink", "data": {"all": ["tens", "total"]}} in seen
    assert {"kind": "status", "node": "stopper", "data": "finished"} in seen
    assert "\x1b[" not in console  # NO_COLOR


@pytest.mark.dora
def test_an_exported_graph_runs_under_dora_and_reports_through_its_log(tmp_path: Path) -> None:
    flow = full_flow(tmp_path)
    out = tmp_path / "out"
    flow.export(out)

    def check(console: str) -> None:
        check_records(records(out), "dora", console)
        check_dora_console(console)

    dora_run(out, check)

    # The embedded engine runs the same files, with the same outcome.
    shutil.rmtree(out / "out")
    rc, console = notebook_run(out)
    assert rc == 0, console[-4000:]
    check_records(records(out), "dora-notebook", console)
    assert "[dora-notebook] {" not in console  # there, reports go to the panels


@pytest.mark.dora
def test_an_exported_notebook_runs_under_dora(tmp_path: Path) -> None:
    path = demo_notebook(tmp_path / "nb")
    out = tmp_path / "out"
    rc, console = run(
        [sys.executable, "-m", "dora_notebook.cli", "export", str(path), str(out)], tmp_path
    )
    assert rc == 0, console

    def check(console: str) -> None:
        assert records(out) == {"rec": [[0], [2], [4]]}, console[-3000:]
        assert {"kind": "progress", "node": "twice", "data": 50.0} in reports(console)

    dora_run(out, check)


@pytest.mark.dora
def test_dora_validates_an_export_with_machines(tmp_path: Path) -> None:
    flow = full_flow(tmp_path)
    flow.graph["calc"].machine = "alpha"
    flow.export(tmp_path / "out")
    rc, console = run([needs_dora(), "validate", "dataflow.yml"], tmp_path / "out")
    assert rc == 0 and "Descriptor config OK" in console, console


# -- never a user's file -------------------------------------------------------------------


def _calc_flow() -> Dataflow:
    flow = Dataflow(echo=False)
    flow.add_operator("calc", "class Operator:\n    pass\n")
    return flow


def test_export_never_replaces_a_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "calc.py").write_text("# the user's own calc\n")
    (out / "dataflow.yml").write_text("nodes: []  # the user's own\n")
    with pytest.raises(GraphError) as info:
        _calc_flow().export(out)
    message = str(info.value)
    assert "it holds calc.py, dataflow.yml, not written by dora-notebook" in message
    assert "--force" in message and "\n" not in message
    assert (out / "calc.py").read_text() == "# the user's own calc\n"
    assert sorted(p.name for p in out.iterdir()) == ["calc.py", "dataflow.yml"]


def test_export_replaces_its_own_unchanged_files_and_refuses_edited_ones(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _calc_flow().export(out)
    _calc_flow().export(out)  # its own files, unchanged: replaced without a word
    (out / "notes.txt").write_text("mine\n")
    (out / "calc.py").write_text((out / "calc.py").read_text() + "# my edit\n")
    with pytest.raises(GraphError, match=r"it holds calc\.py, not written by dora-notebook"):
        _calc_flow().export(out)
    assert (out / "calc.py").read_text().endswith("# my edit\n")
    _calc_flow().export(out, force=True)
    assert not (out / "calc.py").read_text().endswith("# my edit\n")
    assert (out / "notes.txt").read_text() == "mine\n"  # never deleted, never touched


def test_a_failed_export_leaves_the_folder_as_it_was(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    flow = _calc_flow()
    flow.add_operator("other", "class Operator:\n    pass\n")
    real = Path.write_bytes
    written = []

    def fail_on_second(self: Path, data: bytes) -> int:
        written.append(self.name)
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_on_second)
    with pytest.raises(GraphError, match=r"cannot export to .*: No space left on device"):
        flow.export(out)
    assert len(written) == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # no file, no staging folder
    monkeypatch.setattr(Path, "write_bytes", real)
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(Path, "write_bytes", fail_on_second)
    written.clear()
    with pytest.raises(GraphError):
        flow.export(fresh)
    assert not fresh.exists()  # a folder it made for nothing is removed


def test_the_cli_refuses_a_users_files_unless_forced(tmp_path: Path, capsys) -> None:

    path = tmp_path / "flow.ipynb"
    cell = "%%dora_operator calc --inputs t=dora/timer/secs/1\nclass Operator:\n    pass\n"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "calc.py").write_text("# mine\n")
    assert main(["export", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "it holds calc.py, not written by dora-notebook" in err
    assert (out / "calc.py").read_text() == "# mine\n"
    assert main(["export", str(path), str(out), "--force"]) == 0
    assert (out / "calc.py").read_text().startswith("class Operator:")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "nodes:\n  - id: a\n    path: a.py\n    inputs:\n      t:\n"
            "        source: dora/timer/secs/1\n        queue_size: 99999999999999999999\n",
            "queue_size must be at most 1,000,000",
        ),
        (f"nodes:\n  - id: {'a' * 300}\n    path: a.py\n", "300 characters, at most 128"),
    ],
)
def test_descriptor_values_beyond_what_export_can_write_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "a.py").write_text("")
    flow = Dataflow(echo=False)
    with pytest.raises(GraphError, match=message):
        flow.load_yaml(text, base_dir=tmp_path)
