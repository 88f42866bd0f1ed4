"""The SVG and text views of a dataflow graph: structure, labels, layout, safety, stability."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from dora_notebook import Dataflow
from dora_notebook.core.graph import Graph, InputSpec, NodeSpec
from dora_notebook.jupyter.graphview import (
    STATUS_COLOURS,
    render_dataflow_svg,
    render_svg,
    render_text,
    timer_label,
    xml_escape,
)

SVG = "{http://www.w3.org/2000/svg}"


def make_graph(*nodes: tuple[str, str, list[str], dict[str, str]]) -> Graph:
    graph = Graph()
    for node_id, kind, outputs, inputs in nodes:
        specs = {k: InputSpec(k, v) for k, v in inputs.items()}
        graph.add(NodeSpec(node_id, kind, specs, outputs, source=""))
    return graph


def vision() -> Graph:
    """camera -> detector -> plot, a timer, and a fan-in at plot."""
    return make_graph(
        ("camera", "node", ["frame"], {"tick": "dora/timer/millis/100"}),
        ("detector", "operator", ["boxes"], {"image": "camera/frame"}),
        ("plot", "operator", [], {"image": "camera/frame", "boxes": "detector/boxes"}),
    )


def edge_rows(graph: Graph, dropped: dict[str, int] | None = None) -> list[dict]:
    return [
        {
            "source": inp.source,
            "target": spec.id,
            "input": inp.input_id,
            "delivered": 40 + i,
            "dropped": (dropped or {}).get(f"{spec.id}/{inp.input_id}", 0),
            "queued": 0,
        }
        for i, (spec, inp) in enumerate((s, n) for s in graph for n in s.inputs.values())
    ]


def groups(svg: str, cls: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


def text_of(element: ET.Element) -> str:
    return " ".join("".join(t.itertext()) for t in element.iter(f"{SVG}text"))


def boxes(svg: str) -> dict[str, ET.Element]:
    """Each node's rect, by the node id written in bold in its box."""
    found = {}
    for g in groups(svg, "dn-node"):
        bold = next(t for t in g.iter(f"{SVG}text") if t.get("font-weight") == "bold")
        found[bold.text] = g.find(f"{SVG}rect")
    return found


def test_svg_is_valid_xml_with_one_box_per_node_and_one_path_per_edge() -> None:
    svg = render_svg(vision())
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert sorted(boxes(svg)) == ["camera", "detector", "plot"]
    edges = groups(svg, "dn-edge")
    assert len(edges) == 4  # tick, image, image, boxes
    for edge in edges:
        assert len(edge.findall(f"{SVG}path")) == 1
        assert len(edge.findall(f"{SVG}polygon")) == 1  # its arrowhead
        assert " C" in edge.find(f"{SVG}path").get("d")  # a cubic Bézier
    titles = sorted(e.find(f"{SVG}title").text for e in edges)
    assert titles == [
        "camera/frame -> detector/image",
        "camera/frame -> plot/image",
        "detector/boxes -> plot/boxes",
        "dora/timer/millis/100 -> camera/tick",
    ]


def test_nodes_show_kind_status_and_counts_and_edges_their_labels_and_counts() -> None:
    graph = vision()
    info = {
        "camera": SimpleNamespace(status="running", received=10, sent=20, dropped=0),
        "plot": SimpleNamespace(status="failed", received=5, sent=0, dropped=3),
    }
    svg = render_svg(graph, info, edge_rows(graph, {"plot/boxes": 7}))
    nodes = {text_of(g).split()[0]: text_of(g) for g in groups(svg, "dn-node")}
    assert nodes["camera"] == "camera node · running 10 in / 20 out / 0 dropped"
    assert nodes["detector"] == "detector operator · defined"  # no info: no counts
    assert nodes["plot"] == "plot operator · failed 5 in / 0 out / 3 dropped"
    plot = next(g for g in groups(svg, "dn-node") if text_of(g).startswith("plot"))
    assert [t.text for t in plot.iter(f"{SVG}tspan") if t.get("fill") == "#d32f2f"] == ["3"]
    labels = ET.fromstring(svg).findall(f"{SVG}text")  # edge labels sit at the top level
    pairs = ["".join(t.itertext()) for t in labels]
    assert "frame → image" in pairs and "boxes → boxes" in pairs and "tick" in pairs
    assert "43 delivered, 7 dropped" in pairs  # the fourth edge is plot/boxes
    red = [t.text for t in ET.fromstring(svg).iter(f"{SVG}tspan") if t.get("fill") == "#d32f2f"]
    assert sorted(red) == ["3", "7 dropped"]  # only counts above zero are red


def test_a_node_a_stop_left_blocked_says_where() -> None:
    graph = make_graph(("cam", "node", [], {}))
    where = "still blocked in time.sleep, line 4"
    info = {"cam": SimpleNamespace(status="failed", received=1, sent=0, dropped=0, blocked=where)}
    (node,) = groups(render_svg(graph, info), "dn-node")
    assert text_of(node) == "cam node · blocked 1 in / 0 out / 0 dropped"
    assert node.find(f"{SVG}title").text == f"cam: node, failed, 1 in / 0 out / 0 dropped; {where}"
    assert render_text(graph, info).endswith(f"received 1 / sent 0 / dropped 0; {where}")


@pytest.mark.parametrize("status", [*STATUS_COLOURS, "something-new"])
def test_status_picks_the_outline_colour(status: str) -> None:
    graph = make_graph(("solo", "operator", [], {}))
    info = {"solo": SimpleNamespace(status=status, received=0, sent=0, dropped=0)}
    rect = boxes(render_svg(graph, info))["solo"]
    assert rect.get("stroke") == STATUS_COLOURS.get(status, STATUS_COLOURS["defined"])


def test_each_distinct_timer_is_drawn_once_as_a_source_of_its_consumers() -> None:
    graph = make_graph(
        ("a", "node", ["x"], {"tick": "dora/timer/millis/100"}),
        ("b", "node", [], {"tick": "dora/timer/millis/100", "slow": "dora/timer/secs/2"}),
        ("c", "node", [], {"fast": "dora/timer/hz/50", "x": "a/x"}),
    )
    svg = render_svg(graph)
    timers = groups(svg, "dn-timer")
    assert sorted(text_of(t) for t in timers) == ["timer 100 ms", "timer 2 s", "timer 50 Hz"]
    assert len(groups(svg, "dn-edge")) == 5
    rects = boxes(svg)
    consumers = {"timer 100 ms": "ab", "timer 2 s": "b", "timer 50 Hz": "c"}
    for timer in timers:  # a source, left of each of its consumers
        pill = timer.find(f"{SVG}rect")
        right = float(pill.get("x")) + float(pill.get("width"))
        assert all(right < float(rects[c].get("x")) for c in consumers[text_of(timer)])


@pytest.mark.parametrize(
    ("source", "label"),
    [
        ("dora/timer/millis/100", "timer 100 ms"),
        ("dora/timer/secs/2", "timer 2 s"),
        ("dora/timer/hz/50", "timer 50 Hz"),
        ("dora/timer/weeks/1", "dora/timer/weeks/1"),
    ],
)
def test_timer_labels(source: str, label: str) -> None:
    assert timer_label(source) == label


@pytest.mark.timeout(10)
def test_cycles_and_self_loops_render_with_their_back_edges_dashed() -> None:
    graph = make_graph(
        ("a", "node", ["out"], {"back": "c/out", "tick": "dora/timer/millis/10"}),
        ("b", "operator", ["out"], {"x": "a/out"}),
        ("c", "operator", ["out"], {"x": "b/out", "again": "c/out"}),
    )
    svg = render_svg(graph)
    edges = groups(svg, "dn-edge")
    assert len(edges) == 5
    dashed = [
        e.find(f"{SVG}title").text for e in edges if e.find(f"{SVG}path").get("stroke-dasharray")
    ]
    assert sorted(dashed) == ["c/out -> a/back", "c/out -> c/again"]
    x = {k: float(r.get("x")) for k, r in boxes(svg).items()}
    assert x["a"] < x["b"] < x["c"]  # the cycle is broken at its back edge for layering


def test_a_chain_is_laid_out_left_to_right_and_long_edges_pass_a_waypoint() -> None:
    graph = make_graph(
        ("a", "node", ["out"], {}),
        ("b", "operator", ["out"], {"x": "a/out"}),
        ("c", "operator", [], {"x": "b/out", "skip": "a/out"}),
    )
    svg = render_svg(graph)
    rects = boxes(svg)
    x = {k: float(r.get("x")) for k, r in rects.items()}
    assert x["a"] < x["b"] < x["c"]
    assert float(rects["a"].get("x")) + float(rects["a"].get("width")) < x["b"]
    paths = {
        e.find(f"{SVG}title").text: e.find(f"{SVG}path").get("d") for e in groups(svg, "dn-edge")
    }
    assert paths["a/out -> c/skip"].count("C") == 2  # one curve per column gap
    assert paths["a/out -> b/x"].count("C") == 1


def test_ordering_within_a_column_removes_an_avoidable_crossing() -> None:
    graph = make_graph(
        ("s1", "node", ["o"], {}),
        ("s2", "node", ["o"], {}),
        ("t2", "operator", [], {"x": "s2/o"}),  # defined first, but fed by the lower source
        ("t1", "operator", [], {"x": "s1/o"}),
    )
    y = {k: float(r.get("y")) for k, r in boxes(render_svg(graph)).items()}
    assert y["s1"] < y["s2"]
    assert y["t1"] < y["t2"]


def test_output_is_deterministic() -> None:
    info = {"plot": SimpleNamespace(status="running", received=1, sent=2, dropped=3)}
    first = render_svg(vision(), info, edge_rows(vision()))
    assert render_svg(vision(), info, edge_rows(vision())) == first
    assert render_text(vision(), info, edge_rows(vision())) == render_text(
        vision(), info, edge_rows(vision())
    )


def test_hostile_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & \x07'
    graph = vision()
    graph["plot"].inputs = {hostile: InputSpec(hostile, "detector/boxes")}  # past validation
    info = {"plot": SimpleNamespace(status="<b>&", received="<1>", sent=0, dropped=0)}
    svg = render_svg(graph, info)
    root = ET.fromstring(svg)  # still well-formed
    assert "<script" not in svg
    assert not root.findall(f".//{SVG}script")
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert 'boxes → <script>alert("x")</script> & \ufffd' in texts
    assert "plot operator · <b>& <1> in / 0 out / 0 dropped" in [
        text_of(g) for g in groups(svg, "dn-node")
    ]
    assert xml_escape("a'b\"<>&\x00\ud800") == "a&#39;b&quot;&lt;&gt;&amp;\ufffd\ufffd"


def test_svg_is_self_contained_and_sized_to_its_content() -> None:
    graph = vision()
    svg = render_svg(graph, edge_info=edge_rows(graph))
    for banned in ("<script", "<style", "href", "url(", "@import", "<image", "<foreignObject"):
        assert banned not in svg
    assert "id=" not in svg  # two SVGs on one page cannot clash
    root = ET.fromstring(svg)
    vx, vy, vw, vh = map(float, root.get("viewBox").split())
    assert (float(root.get("width")), float(root.get("height"))) == (vw, vh)
    for el in root.iter(f"{SVG}rect"):
        x, y = float(el.get("x")), float(el.get("y"))
        assert vx <= x and x + float(el.get("width")) <= vx + vw
        assert vy <= y and y + float(el.get("height")) <= vy + vh
    for path in root.iter(f"{SVG}path"):
        for px, py in re.findall(r"(-?[\d.]+),(-?[\d.]+)", path.get("d")):
            assert vx <= float(px) <= vx + vw and vy <= float(py) <= vy + vh


def test_empty_graph_is_a_small_svg_saying_no_nodes() -> None:
    svg = render_svg(Graph())
    root = ET.fromstring(svg)
    assert "".join(root.itertext()).strip() == "no nodes"
    assert float(root.get("width")) < 120 and float(root.get("height")) < 60
    assert render_text(Graph()) == "no nodes"


def test_an_unknown_source_is_drawn_dashed_instead_of_failing() -> None:
    graph = vision()
    graph["plot"].inputs["ghost"] = InputSpec("ghost", "nowhere/out")  # not validated
    svg = render_svg(graph)
    assert boxes(svg)["nowhere"].get("stroke-dasharray")
    ghost = [text_of(g) for g in groups(svg, "dn-node") if text_of(g).startswith("nowhere")]
    assert ghost == ["nowhere not in graph · unknown"]
    assert "nowhere/out -> plot/ghost" in render_text(graph)


def test_render_text_lists_nodes_then_edges_with_counts() -> None:
    graph = vision()
    info = {"camera": SimpleNamespace(status="running", received=10, sent=20, dropped=1)}
    assert render_text(graph, info, edge_rows(graph, {"plot/boxes": 2})).splitlines() == [
        "camera    node      running   received 10 / sent 20 / dropped 1",
        "detector  operator  defined",
        "plot      operator  defined",
        "dora/timer/millis/100 -> camera/tick  delivered 40, dropped 0",
        "camera/frame -> detector/image  delivered 41, dropped 0",
        "camera/frame -> plot/image  delivered 42, dropped 0",
        "detector/boxes -> plot/boxes  delivered 43, dropped 2",
    ]


def test_render_dataflow_svg_reads_a_dataflow() -> None:
    flow = Dataflow(echo=False)
    flow.add_node("src", "pass", outputs=["n"], inputs={"tick": "dora/timer/secs/1"})
    flow.add_operator("sink", "class Operator: pass", inputs={"n": "src/n"})
    svg = render_dataflow_svg(flow)
    assert sorted(boxes(svg)) == ["sink", "src"]
    assert "0 delivered, " in svg and "0 in / 0 out / 0 dropped" in svg  # counters, not run
    fake = SimpleNamespace(
        graph=flow.graph,
        node=lambda i: SimpleNamespace(status="finished", received=1, sent=2, dropped=0),
        edges=lambda: [],
    )
    assert boxes(render_dataflow_svg(fake))["sink"].get("stroke") == STATUS_COLOURS["finished"]
