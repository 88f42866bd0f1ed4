"""The dataflow model: parsing, validation and dora YAML in and out."""

from __future__ import annotations

from pathlib import Path

import pytest

from dora_notebook.core import yaml12
from dora_notebook.core.graph import (
    Graph,
    InputSpec,
    NodeSpec,
    Timer,
    load_yaml_text,
    parse_input,
    specs_from_descriptor,
)
from dora_notebook.errors import GraphError


def load(text: str, base: Path) -> Graph:
    """A validated graph from descriptor text, read on the package's one YAML 1.2 path."""
    graph = Graph()
    for spec in specs_from_descriptor(load_yaml_text(text), base):
        graph.add(spec)
    graph.validate()
    return graph


def write(tmp_path: Path, name: str, text: str = "") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("spec", "interval", "named"),
    [
        ("dora/timer/millis/100", 0.1, "dora/timer/millis/100"),
        ("dora/timer/secs/2", 2.0, "dora/timer/secs/2"),
        ("dora/timer/hz/50", 0.02, "dora/timer/millis/20"),
        # Fractional rates, as dora-rs 1.1 accepts them (and names them in `dora expand`).
        ("dora/timer/hz/0.5", 2.0, "dora/timer/secs/2"),
        ("dora/timer/hz/.5", 2.0, "dora/timer/secs/2"),
        ("dora/timer/hz/1e3", 0.001, "dora/timer/millis/1"),
        ("dora/timer/hz/7", 0.142857143, "dora/timer/nanos/142857143"),
        ("dora/timer/micros/5", 5e-6, "dora/timer/micros/5"),
        ("dora/timer/nanos/1000", 1e-6, "dora/timer/micros/1"),
    ],
)
def test_timer_intervals(spec: str, interval: float, named: str) -> None:
    timer = Timer.parse(spec)
    assert timer.interval == pytest.approx(interval)
    assert timer.spec == named


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("dora/timer/millis/0", "has a zero interval"),
        ("dora/timer/parsecs/3", "unknown timer unit 'parsecs'"),
        ("dora/timer/millis/-5", "millis must be a whole number"),
        ("dora/timer/millis/1.5", "millis must be a whole number"),
        ("dora/timer/millis", "is not a timer"),
        ("dora/timer/hz/0", "hz must be a positive number"),
        ("dora/timer/hz/inf", "hz must be a positive number"),
        ("dora/timer/hz/1_000", "hz must be a positive number"),
        ("dora/timer/hz/1e-300", "too slow"),
        ("dora/timer/hz/3000000000", "has a zero interval"),
    ],
)
def test_bad_timers_are_refused_naming_node_and_input(spec: str, message: str) -> None:
    with pytest.raises(GraphError) as info:
        parse_input("sink", "tick", spec)
    assert str(info.value).startswith("node 'sink': inputs.tick: ")
    assert message in str(info.value)


def test_inputs_short_and_long_form() -> None:
    short = parse_input("b", "x", "a/out")
    assert (short.source_node, short.source_output, short.capacity) == ("a", "out", 10)
    long = parse_input("b", "x", {"source": "a/out", "queue_size": 3})
    assert long.capacity == 3 and long.to_yaml() == {"source": "a/out", "queue_size": 3}
    with pytest.raises(GraphError, match=r"inputs.x: queue_size must be a whole number >= 1"):
        parse_input("b", "x", {"source": "a/out", "queue_size": 0})
    with pytest.raises(GraphError, match=r"inputs.x: unknown key\(s\) \['colour'\]"):
        parse_input("b", "x", {"source": "a/out", "colour": 1})
    with pytest.raises(GraphError, match="must be 'node/output'"):
        parse_input("b", "x", "a/out/extra")


@pytest.mark.parametrize("bad", ["a/b", "..", "../x", "a\\b", "", ".hidden", "a..b", "dora", "a b"])
def test_invalid_node_ids(bad: str) -> None:
    with pytest.raises(GraphError, match="invalid node id"):
        Graph().add(NodeSpec(bad, "operator", source="x"))


def test_duplicate_id_is_refused() -> None:
    graph = Graph()
    graph.add(NodeSpec("a", "operator", source="x"))
    with pytest.raises(GraphError, match="duplicate node id 'a'"):
        graph.add(NodeSpec("a", "node", source="y"))
    graph.add(NodeSpec("a", "node", source="y"), replace=True)
    assert graph["a"].kind == "node"


def test_validate_names_unknown_node_and_output() -> None:
    graph = Graph()
    graph.add(NodeSpec("a", "node", source="x", outputs=["out"]))
    graph.add(NodeSpec("b", "operator", source="x", inputs={"x": InputSpec("x", "ghost/out")}))
    with pytest.raises(GraphError, match=r"node 'b': inputs.x: unknown source node 'ghost'"):
        graph.validate()
    graph.add(
        NodeSpec("b", "operator", source="x", inputs={"x": InputSpec("x", "a/nope")}), replace=True
    )
    with pytest.raises(GraphError, match=r"node 'a' has no output 'nope' \(declared: out\)"):
        graph.validate()


DESCRIPTOR = """
nodes:
  - id: camera
    path: camera.py
    args: --fps 30 "two words"
    env:
      SCALE: 2
      DEBUG: true
    inputs:
      tick: dora/timer/millis/20
    outputs: [image]
    description: a frame source
  - id: detect
    operator:
      python: detect.py
      inputs:
        image:
          source: camera/image
          queue_size: 1
      outputs: [bbox]
  - id: plot
    path: plot.py
    inputs:
      image: camera/image
      bbox: detect/bbox
    deploy:
      machine: alpha
"""


def make_descriptor(tmp_path: Path) -> Path:
    for name in ("camera.py", "detect.py", "plot.py"):
        write(tmp_path, name)
    return write(tmp_path, "dataflow.yml", DESCRIPTOR)


def test_descriptor_loads_every_field(tmp_path: Path) -> None:
    path = make_descriptor(tmp_path)
    graph = load(path.read_text(), tmp_path)
    camera, detect, plot = graph["camera"], graph["detect"], graph["plot"]
    assert camera.kind == "node" and detect.kind == "operator"
    assert camera.path == (tmp_path / "camera.py").resolve()
    assert camera.args == ["--fps", "30", "two words"]
    assert camera.env == {"SCALE": "2", "DEBUG": "true"}
    assert camera.inputs["tick"].timer.interval == pytest.approx(0.02)
    assert camera.extra == {"description": "a frame source"}
    assert detect.inputs["image"].capacity == 1 and detect.outputs == ["bbox"]
    assert plot.machine == "alpha"
    assert [s.id for s in graph] == ["camera", "detect", "plot"]


def test_descriptor_round_trip(tmp_path: Path) -> None:
    path = make_descriptor(tmp_path)
    first = load(path.read_text(), tmp_path)
    text = yaml12.dump(first.to_descriptor())
    second = load(text, tmp_path)
    assert second.to_descriptor() == first.to_descriptor()
    plot = second.to_descriptor()["nodes"][2]
    assert plot["deploy"] == {"machine": "alpha"}
    assert second.to_descriptor()["nodes"][1]["operator"]["inputs"]["image"] == {
        "source": "camera/image",
        "queue_size": 1,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b", "a dora descriptor is a mapping with a 'nodes' list, not list"),
        ("nodes: 3", "'nodes' must be a list"),
        ("nodes: []\nflavour: x", "descriptor: unknown key(s) ['flavour']"),
        (
            "nodes:\n  - id: a\n    path: a.py\n    colour: red",
            "node 'a': unknown key(s) ['colour']",
        ),
        (
            "nodes:\n  - id: a\n    path: missing.py",
            "node 'a': path: file 'missing.py' does not exist",
        ),
        (
            "nodes:\n  - id: a\n    operator:\n      python: nope.py",
            "node 'a': operator.python: file 'nope.py' does not exist",
        ),
        ("nodes:\n  - id: a/b\n    path: a.py", "invalid node id 'a/b'"),
        ("nodes:\n  - id: a\n    path: a.py\n  - id: a\n    path: a.py", "duplicate node id 'a'"),
        ("nodes:\n  - id: a\n    path: dynamic", "dynamic nodes need the dora engine"),
        (
            "nodes:\n  - id: a\n    path: a.py\n    inputs:\n      t: dora/timer/millis/0",
            "node 'a': inputs.t: timer 'dora/timer/millis/0' has a zero interval",
        ),
        (
            "nodes:\n  - id: a\n    operators: []",
            "'operators' (several operators in one runtime node)",
        ),
    ],
)
def test_bad_descriptors_give_one_clear_message(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "a.py")
    with pytest.raises(GraphError) as info:
        load(text, tmp_path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_source_output_in_descriptor(tmp_path: Path) -> None:
    write(tmp_path, "a.py")
    text = (
        "nodes:\n  - id: a\n    path: a.py\n    outputs: [x]\n  - id: b\n    path: a.py\n"
        "    inputs:\n      i: a/y\n"
    )
    with pytest.raises(GraphError, match=r"node 'b': inputs.i: node 'a' has no output 'y'"):
        load(text, tmp_path)
