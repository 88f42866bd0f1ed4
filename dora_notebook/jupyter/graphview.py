"""Draw a dataflow graph as a self-contained SVG, with a plain-text twin, for ``%dora_status``.

The SVG holds no script, style sheet, font, marker id or URL, so it shows the same in
JupyterLab, on GitHub and in nbviewer with no network, and two on one page cannot clash.
The same graph and counters give byte-identical output, so stored notebook outputs are stable.

>>> from dora_notebook.core.graph import Graph, InputSpec, NodeSpec
>>> g = Graph()
>>> g.add(NodeSpec("cam", "node", source="", outputs=["frame"],
...                inputs={"tick": InputSpec("tick", "dora/timer/millis/100")}))
>>> g.add(NodeSpec("plot", "operator", source="", inputs={"img": InputSpec("img", "cam/frame")}))
>>> render_svg(g).startswith("<svg ")
True
>>> print(render_text(g))
cam   node      defined
plot  operator  defined
dora/timer/millis/100 -> cam/tick
cam/frame -> plot/img
"""

from __future__ import annotations

import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.graph import Graph

__all__ = [
    "STATUS_COLOURS",
    "Meter",
    "NodeInfo",
    "live_numbers",
    "render_dataflow_svg",
    "render_svg",
    "render_text",
    "timer_label",
    "xml_escape",
]

#: Outline, tint and dot colour of a node by status; any other status is drawn as "defined".
STATUS_COLOURS = {
    "defined": "#9e9e9e",
    "running": "#1e88e5",
    "finished": "#43a047",
    "failed": "#e53935",
}
_RED, _INK, _MUTED, _EDGE = "#d32f2f", "#212121", "#616161", "#78909c"
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_UNITS = {"millis": "ms", "secs": "s", "hz": "Hz"}
_ROW_GAP, _PAD = 30.0, 16.0
_Point = tuple[float, float]


class NodeInfo(Protocol):
    """What is shown of a node's run; :class:`~dora_notebook.core.observe.NodeState` fits.

    A ``blocked`` attribute, where it exists and is set, says where a stopped
    node's code is still blocked (``still blocked in time.sleep, line 4``).
    """

    @property
    def status(self) -> str: ...
    @property
    def received(self) -> int: ...
    @property
    def sent(self) -> int: ...
    @property
    def dropped(self) -> int: ...


def xml_escape(text: object) -> str:
    """``str(text)`` safe in XML text and quoted attributes; characters XML forbids become U+FFFD.

    >>> xml_escape('<a & "b"\\x00>')
    '&lt;a &amp; &quot;b&quot;\\ufffd&gt;'
    """
    s = _INVALID_XML.sub("\ufffd", str(text)).replace("&", "&amp;")
    return s.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;")


def timer_label(source: str) -> str:
    """The label of a timer source; anything else is returned as it is.

    >>> timer_label("dora/timer/millis/100"), timer_label("dora/timer/hz/50")
    ('timer 100 ms', 'timer 50 Hz')
    """
    parts = source.split("/")
    if len(parts) == 4 and parts[:2] == ["dora", "timer"] and parts[2] in _UNITS:
        return f"timer {parts[3]} {_UNITS[parts[2]]}"
    return source


@dataclass(eq=False)
class _Vertex:
    key: str
    kind: str  # "operator", "node", "timer", "missing" (an unknown source) or "dummy"
    col: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0
    outs: list[_Edge] = field(default_factory=list)
    ins: list[_Edge] = field(default_factory=list)


@dataclass(eq=False)
class _Edge:
    src: _Vertex
    dst: _Vertex
    label: str = ""
    name: str = ""  # "src/out -> dst/in"
    info: tuple[Any, Any] | None = None  # delivered, dropped
    note: str = ""  # what the counts mean, when the engine says (Dataflow.edges())
    live: str = ""  # rate, queue and latency: "12/s · 3 queued · p50 1.2 ms"
    back: bool = False  # closes a cycle
    ports: list[float] = field(default_factory=lambda: [0.0, 0.0])  # exit y, entry y
    segs: list[_Edge] = field(default_factory=list)  # one per column gap crossed

    def link(self) -> _Edge:
        self.src.outs.append(self)
        self.dst.ins.append(self)
        return self


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _pt(p: _Point) -> str:
    return f"{_f(p[0])},{_f(p[1])}"


def _tw(text: str, size: float, bold: bool = False) -> float:
    """A generous estimate of a text's width: an SVG without its own font cannot measure."""
    return len(text) * size * (0.64 if bold else 0.58)


def _model(graph: Graph, rows: Sequence[Mapping[str, Any]] | None) -> tuple[list, list[_Edge]]:
    """One edge per input; each timer spec and each unknown source is a vertex of its own."""
    info = {(r.get("target"), r.get("input")): r for r in rows or ()}
    verts = {spec.id: _Vertex(spec.id, spec.kind) for spec in graph}
    edges = []
    for spec in graph:
        for inp in spec.inputs.values():
            timer = inp.source.startswith("dora/")
            key, _, output = (inp.source, "", "") if timer else inp.source.partition("/")
            src = verts.setdefault(key, _Vertex(key, "timer" if timer else "missing"))
            label = f"{output} → {inp.input_id}" if output else str(inp.input_id)
            name = f"{inp.source} -> {spec.id}/{inp.input_id}"
            row = info.get((spec.id, inp.input_id))
            counts = None if row is None else (row.get("delivered", 0), row.get("dropped", 0))
            note = str(row.get("note") or "") if row is not None else ""
            live = _edge_live(row) if row is not None else ""
            edges.append(_Edge(src, verts[spec.id], label, name, counts, note, live).link())
    return list(verts.values()), edges


def _layer(verts: list[_Vertex], edges: list[_Edge]) -> list[list[_Vertex]]:
    """Columns: a DFS marks back edges, columns are longest paths over the rest, sources move
    next to their nearest consumer, and a forward edge gets a waypoint in each column it spans.
    """
    state: dict[_Vertex, int] = {}  # 1 while on the DFS stack, 2 when finished
    finished: list[_Vertex] = []
    for start in [v for v in verts if not v.ins] + verts:
        if start in state:
            continue
        state[start], stack = 1, [(start, iter(start.outs))]
        while stack:
            for e in stack[-1][1]:
                if state.get(e.dst) == 1:
                    e.back = True
                elif e.dst not in state:
                    state[e.dst] = 1
                    stack.append((e.dst, iter(e.dst.outs)))
                    break
            else:
                state[stack[-1][0]] = 2
                finished.append(stack.pop()[0])
    for v in reversed(finished):  # a topological order of the forward edges
        for e in v.outs:
            e.dst.col = e.dst.col if e.back else max(e.dst.col, v.col + 1)
    for v in verts:
        if v.outs and all(e.back for e in v.ins) and not any(e.back for e in v.outs):
            v.col = min(e.dst.col for e in v.outs) - 1
    for e in edges:
        e.src.outs.remove(e)
        e.dst.ins.remove(e)
        spans = range(0) if e.back else range(e.src.col + 1, e.dst.col)
        chain = [e.src, *(_Vertex(f"{e.name}#{c}", "dummy", c) for c in spans), e.dst]
        e.segs = [_Edge(a, b, back=e.back).link() for a, b in itertools.pairwise(chain)]
        verts.extend(chain[1:-1])
    cols: list[list[_Vertex]] = [[] for _ in range(max(v.col for v in verts) + 1)]
    for v in verts:
        cols[v.col].append(v)
    return cols


def _order(cols: list[list[_Vertex]]) -> None:
    """Two barycenter sweeps each way to reduce crossings; ties keep the current order."""
    pos = {v: i - (len(col) - 1) / 2 for col in cols for i, v in enumerate(col)}
    for sweep in range(4):
        down = sweep % 2 == 0
        for col in cols[1:] if down else cols[-2::-1]:
            bary = {}
            for v in col:
                ns = [e.src for e in v.ins] if down else [e.dst for e in v.outs]
                ns = [n for n in ns if n.col != v.col]
                bary[v] = sum(pos[n] for n in ns) / len(ns) if ns else pos[v]
            col.sort(key=lambda v: (bary[v], pos[v]))
            pos.update({v: i - (len(col) - 1) / 2 for i, v in enumerate(col)})


# status, received, sent, dropped, where a stopped node is blocked, busy share (None: not
# shown): read once per render
_State = tuple[str, Any, Any, Any, str | None, float | None]


def _busy(share: float | None) -> str:
    return "" if share is None else f" · busy {min(1.0, max(0.0, share)) * 100:.0f} %"


def _node_counts(state: _State | None) -> str:
    if state is None:
        return ""
    return f"{state[1]} in / {state[2]} out / {state[3]} dropped{_busy(state[5])}"


def _edge_counts(counts: tuple[Any, Any] | None) -> str:
    return "" if counts is None else f"{counts[0]} delivered, {counts[1]} dropped"


def _duration(seconds: float) -> str:
    """A short duration: ``850 us``, ``1.2 ms``, ``35 ms``, ``2.5 s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 0.1:
        return f"{seconds * 1e3:.2g} ms" if seconds < 0.01 else f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"


def _rate(per_second: float) -> str:
    return f"{per_second:.3g}/s" if per_second < 1000 else f"{per_second / 1000:.3g}k/s"


def _edge_live(row: Mapping[str, Any]) -> str:
    """The third line of an edge's label: rate, queue depth, latency, each when known.

    ``rate`` (messages/s) comes from a :class:`Meter` (present while the run goes on);
    the queue depth shows then, or when not 0 (None: the engine cannot see the queue);
    ``latency`` None is not shown (the edge's note says why).

    >>> _edge_live({"rate": 30.04, "queued": 0, "latency": 0.0012})
    '30/s · 0 queued · p50 1.2 ms'
    >>> _edge_live({"queued": 0, "latency": None}), _edge_live({"rate": 1, "queued": None})
    ('', '1/s · queue not seen')
    """
    live = row.get("rate") is not None
    parts = [_rate(row["rate"])] if live else []
    queued = row.get("queued")
    if queued is None and live:
        parts.append("queue not seen")
    elif queued is not None and (live or queued):
        parts.append(f"{queued} queued")
    if row.get("latency") is not None:
        parts.append(f"p50 {_duration(row['latency'])}")
    return " · ".join(parts)


def _red(count: Any, text: object) -> str:
    """``text`` escaped, and in red when ``count`` is above zero."""
    body = xml_escape(text)
    red = isinstance(count, (int, float)) and not isinstance(count, bool) and count > 0
    return f'<tspan fill="{_RED}">{body}</tspan>' if red else body


def _label_size(e: _Edge) -> _Point:
    width = max(_tw(e.label, 11), _tw(_edge_counts(e.info), 10), _tw(e.live, 10)) + 8
    return width, 16.0 + 12.0 * ((e.info is not None) + bool(e.live))


def _geometry(cols: list[list[_Vertex]], edges: list[_Edge], info: Mapping[str, _State]) -> None:
    """Box sizes, column x (each gap as wide as its labels), centred columns, edge ports."""
    node_h = 58.0 if any(v.key in info for col in cols for v in col) else 42.0
    for v in (v for col in cols for v in col):
        if v.kind == "timer":
            v.w, v.h = _tw(timer_label(v.key), 11) + 34, 24.0
        elif v.kind != "dummy":
            text_w = max(_tw(v.key, 13, True), _tw(_node_counts(info.get(v.key)), 11))
            v.w, v.h = max(text_w + 20, _tw("operator · finished", 11) + 34), node_h
    x, tallest = 0.0, max(sum(v.h + _ROW_GAP for v in col) for col in cols)
    for c, col in enumerate(cols):
        width = max(v.w for v in col)
        y = (tallest - sum(v.h + _ROW_GAP for v in col)) / 2
        for v in col:
            v.w = v.w if v.kind == "timer" else width  # so back edges leave from the column edge
            v.x, v.y, y = x + (width - v.w) / 2, y, y + v.h + _ROW_GAP
        labels = [_label_size(e)[0] for e in edges if e.src.col == c and not e.back]
        x += width + max(60.0, max(labels, default=0) + 40)
    for v in (v for col in cols for v in col):
        for side, ends in enumerate((v.outs, v.ins)):
            ranked = sorted((_port_rank(e, side), n) for n, e in enumerate(ends))
            for i, (_, n) in enumerate(ranked):
                ends[n].ports[side] = v.y + v.h * (i + 1) / (len(ends) + 1)


def _port_rank(e: _Edge, side: int) -> float:
    """Ports are spread down a side in the order of their far ends; loops go last (self: first)."""
    if e.back:
        return -1e9 if e.src is e.dst else 1e9
    far = e.dst if side == 0 else e.src
    return far.y + far.h / 2


class _Canvas:
    """SVG elements plus the bounding box of all that is drawn, to size the picture."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.points: list[_Point] = []

    def add(self, part: str, *points: _Point) -> None:
        self.parts.append(part)
        self.points.extend(points)

    def text(self, p: _Point, body: str, size: int = 11, **attrs: str) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        self.add(f'<text x="{_f(p[0])}" y="{_f(p[1])}" font-size="{size}"{extra}>{body}</text>')

    def svg(self) -> str:
        x, y = min(p[0] for p in self.points) - _PAD, min(p[1] for p in self.points) - _PAD
        w = max(p[0] for p in self.points) + _PAD - x
        h = max(p[1] for p in self.points) + _PAD - y
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(w)}" height="{_f(h)}" '
            f'viewBox="{_f(x)} {_f(y)} {_f(w)} {_f(h)}" font-family="Helvetica, Arial, '
            'sans-serif">\n' + "\n".join(self.parts) + "\n</svg>\n"
        )


def _draw_edge(cv: _Canvas, e: _Edge, loop_y: float) -> _Point:
    """The edge's path and arrowhead; returns the middle of its first leg, for the label.

    A forward edge is a cubic Bézier per column gap, straight across its waypoints. A back
    edge is dashed and goes around: out right, down to ``loop_y`` below the boxes (a
    self-loop: up, above its node), left, and into the target's left side.
    """
    ends = [((s.src.x + s.src.w, s.ports[0]), (s.dst.x, s.ports[1])) for s in e.segs]
    (sx, sy), (tx, ty) = ends[0][0], ends[-1][1]
    if e.back:  # two hooks 30 px into the gaps, joined by a line along loop_y
        d = f"M{_pt((sx, sy))} C{_pt((sx + 40, sy))} {_pt((sx + 40, loop_y))} {_pt((sx, loop_y))}"
        d += f" L{_pt((tx, loop_y))} C{_pt((tx - 40, loop_y))} {_pt((tx - 40, ty))} {_pt((tx, ty))}"
        pts, mid = (
            [(sx + 30, sy), (sx, loop_y), (tx, loop_y), (tx - 30, ty)],
            ((sx + tx) / 2, loop_y),
        )
    else:  # the ends of each leg bound its curve, whose control points lie between them
        pts, d = [p for leg in ends for p in leg], ""
        mid = ((ends[0][0][0] + ends[0][1][0]) / 2, (ends[0][0][1] + ends[0][1][1]) / 2)
        for (ax, ay), (bx, by) in ends:
            dx = max(30.0, (bx - ax) / 2)
            d += f"{' L' if d else 'M'}{_pt((ax, ay))} C{_pt((ax + dx, ay))} "
            d += f"{_pt((bx - dx, by))} {_pt((bx, by))}"
    title = e.name + (": " + _edge_counts(e.info) if e.info is not None else "")
    title += f"; {e.live}" if e.live else ""
    title = xml_escape(title + (f" ({e.note})" if e.note else ""))
    cv.add(f'<g class="dn-edge"><title>{title}</title>', *pts)
    dash = ' stroke-dasharray="5 3"' if e.back else ""
    cv.add(f'<path d="{d}" fill="none" stroke="{_EDGE}" stroke-width="1.5"{dash}/>')
    head = f"{_pt((tx, ty))} {_pt((tx - 9, ty - 4))} {_pt((tx - 9, ty + 4))}"
    cv.add(f'<polygon points="{head}" fill="{_EDGE}"/></g>')  # every edge ends heading right
    return mid


def _draw_label(cv: _Canvas, e: _Edge, mx: float, top: float) -> None:
    """``output → input`` and the counts, on a white halo."""
    w, h = _label_size(e)
    box = f'x="{_f(mx - w / 2)}" y="{_f(top)}" width="{_f(w)}" height="{_f(h)}"'
    corners = (mx - w / 2, top), (mx + w / 2, top + h)
    cv.add(f'<rect {box} rx="3" fill="#ffffff" fill-opacity="0.9"/>', *corners)
    cv.text((mx, top + 12), xml_escape(e.label), fill=_INK, text_anchor="middle")
    if e.info is not None:
        body = f"{xml_escape(e.info[0])} delivered, {_red(e.info[1], f'{e.info[1]} dropped')}"
        cv.text((mx, top + 24), body, 10, fill=_MUTED, text_anchor="middle")
    if e.live:
        y = top + (36 if e.info is not None else 24)
        cv.text((mx, y), xml_escape(e.live), 10, fill=_MUTED, text_anchor="middle")


def _draw_vertex(cv: _Canvas, v: _Vertex, state: _State | None) -> None:
    x, y, w, h = v.x, v.y, v.w, v.h
    box = f'x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}"'
    if v.kind == "timer":
        cv.add(f'<g class="dn-timer"><title>{xml_escape(v.key)}</title>', (x, y), (x + w, y + h))
        cv.add(f'<rect {box} rx="{_f(h / 2)}" fill="#fff8e1" stroke="#f9a825"/>')
        cx, cy = x + 14, y + h / 2  # a clock face
        cv.add(f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="6" fill="none" stroke="#f57f17"/>')
        hands = f"M{_pt((cx, cy - 4))} V{_f(cy)} H{_f(cx + 3)}"
        cv.add(f'<path d="{hands}" fill="none" stroke="#f57f17"/>')
        cv.text((x + 25, cy + 4), xml_escape(timer_label(v.key)), fill=_INK)
        cv.add("</g>")
        return
    missing = v.kind == "missing"
    status = "unknown" if missing else "defined" if state is None else state[0]
    colour = STATUS_COLOURS.get(status, STATUS_COLOURS["defined"])
    kind = "not in graph" if missing else v.kind
    title = f"{v.key}: {kind}, {status}" + (f", {_node_counts(state)}" if state else "")
    blocked = state[4] if state is not None else None
    if blocked:
        title, status = f"{title}; {blocked}", "blocked"
    dash = ' stroke-dasharray="4 3"' if missing else ""
    cv.add(f'<g class="dn-node"><title>{xml_escape(title)}</title>', (x, y), (x + w, y + h))
    cv.add(
        f'<rect {box} rx="6" fill="{colour}" fill-opacity="0.08" stroke="{colour}" '
        f'stroke-width="1.5"{dash}/>'
    )
    cv.text((x + 10, y + 18), xml_escape(v.key), 13, font_weight="bold", fill=_INK)
    cv.add(f'<circle cx="{_f(x + 14)}" cy="{_f(y + 31)}" r="4" fill="{colour}"/>')
    body = f'{xml_escape(kind)} · <tspan fill="{colour}">{xml_escape(status)}</tspan>'
    cv.text((x + 23, y + 35), body, fill=_MUTED)
    if state is not None:
        received, sent = xml_escape(state[1]), xml_escape(state[2])
        body = f"{received} in / {sent} out / {_red(state[3], state[3])} dropped"
        cv.text((x + 10, y + 51), body + xml_escape(_busy(state[5])), fill=_MUTED)
    cv.add("</g>")


def render_svg(
    graph: Graph,
    node_info: Mapping[str, NodeInfo] | None = None,
    edge_info: Sequence[Mapping[str, Any]] | None = None,
    busy: Mapping[str, float] | None = None,
) -> str:
    """The graph as an SVG document, laid out in columns from left to right.

    ``node_info`` maps node ids to objects with ``status``, ``received``, ``sent``
    and ``dropped``; ``edge_info`` holds rows like ``Dataflow.edges()``, with a
    ``rate`` (messages/s) where :func:`live_numbers` added one; ``busy`` maps node
    ids to the share of wall time their code spent handling events (0 to 1).

    >>> from dora_notebook.core.graph import Graph
    >>> "no nodes" in render_svg(Graph())
    True
    """
    cv = _Canvas()
    info = {
        k: (
            str(n.status),
            n.received,
            n.sent,
            n.dropped,
            getattr(n, "blocked", None),
            (busy or {}).get(k),
        )
        for k, n in (node_info or {}).items()
    }
    verts, edges = _model(graph, edge_info)
    if not verts:
        cv.add('<text x="0" y="0" font-size="12" fill="#616161">no nodes</text>', (0, -12), (56, 0))
        return cv.svg()
    cols = _layer(verts, edges)
    _order(cols)
    _geometry(cols, edges, info)
    bottom = max(v.y + v.h for v in verts)
    back = [e for e in edges if e.back]
    loops = {
        e: e.src.y - 12 if e.src is e.dst else bottom + 24 + 18 * i for i, e in enumerate(back)
    }
    mids = [_draw_edge(cv, e, loops.get(e, 0.0)) for e in edges]
    for v in verts:
        if v.kind != "dummy":
            _draw_vertex(cv, v, info.get(v.key))
    free: dict[object, float] = {}  # per column gap, the bottom of its lowest label so far
    for my, i, mx in sorted((m[1], i, m[0]) for i, m in enumerate(mids)):
        e, h = edges[i], _label_size(edges[i])[1]
        gap = "back" if e.back else e.src.col
        top = max(my - h / 2, free.get(gap, float("-inf")) + 2)
        free[gap] = top + h
        _draw_label(cv, e, mx, top)
    return cv.svg()


def render_text(
    graph: Graph,
    node_info: Mapping[str, NodeInfo] | None = None,
    edge_info: Sequence[Mapping[str, Any]] | None = None,
    busy: Mapping[str, float] | None = None,
) -> str:
    """A plain-text summary: a line per node, then a line per edge (the text/plain fallback).

    >>> from dora_notebook.core.graph import Graph
    >>> render_text(Graph())
    'no nodes'
    """
    info, (_, edges), specs = node_info or {}, _model(graph, edge_info), list(graph)
    width = max((len(s.id) for s in specs), default=0)
    lines = []
    for spec in specs:
        state = info.get(spec.id)
        line = f"{spec.id:<{width}}  {spec.kind:<8}  {getattr(state, 'status', 'defined'):<8}"
        if state is not None:
            line += f"  received {state.received} / sent {state.sent} / dropped {state.dropped}"
            line += _busy((busy or {}).get(spec.id))
            blocked = getattr(state, "blocked", None)
            line += f"; {blocked}" if blocked else ""
        lines.append(line.rstrip())
    for e in edges:
        counts = "" if e.info is None else f"  delivered {e.info[0]}, dropped {e.info[1]}"
        counts += f"; {e.live}" if e.live else ""
        lines.append(e.name + counts + (f" ({e.note})" if e.note else ""))
    return "\n".join(lines) or "no nodes"


class Meter:
    """Rates of growing counters, from samples the UI takes as it draws: no cost per message.

    :meth:`rates` takes the counters' current values and gives, per key, their
    growth per second since the oldest sample of the last ``window`` seconds
    (at least ``window / 4`` old, so that two close draws do not give noise).

    >>> now = [0.0]
    >>> meter = Meter(window=2.0, clock=lambda: now[0])
    >>> meter.rates({"a": 0})
    {}
    >>> now[0] = 1.0
    >>> meter.rates({"a": 30})
    {'a': 30.0}
    """

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._samples: deque[tuple[float, dict[Hashable, float]]] = deque()

    def rates(self, values: Mapping[Hashable, float | None]) -> dict[Hashable, float]:
        """Record ``values`` (None: not known, skipped) and return the rates known so far."""
        now = self._clock()
        current = {k: float(v) for k, v in values.items() if v is not None}
        samples = self._samples
        # Keep one sample older than the window: the base of the rates.
        while len(samples) > 1 and samples[1][0] <= now - self.window:
            samples.popleft()
        found: dict[Hashable, float] = {}
        if samples and now - samples[0][0] >= self.window / 4:
            then, old = samples[0]
            for key, value in current.items():
                if key in old:
                    found[key] = max(0.0, value - old[key]) / (now - then)
        samples.append((now, current))
        return found

    def reset(self) -> None:
        """Forget the samples (a new run's counters start from 0)."""
        self._samples.clear()


def live_numbers(flow: Any, meter: Meter | None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """``flow.edges()`` with each edge's ``rate``, and each node's busy share, from ``meter``.

    Rates and shares are only given while the flow runs (they describe now); what
    an engine does not measure (a node's ``busy`` of None) is left out.
    """
    rows = flow.edges()
    if meter is None or not getattr(flow, "running", False):
        return rows, {}
    values: dict[Hashable, float | None] = {
        ("edge", r["target"], r["input"]): r.get("delivered") for r in rows
    }
    for spec in flow.graph:
        values["busy", spec.id] = getattr(flow.node(spec.id), "busy", None)
    rates = meter.rates(values)
    for r in rows:
        r["rate"] = rates.get(("edge", r["target"], r["input"]))
    shares = {
        spec.id: rates[("busy", spec.id)] for spec in flow.graph if ("busy", spec.id) in rates
    }
    return rows, shares


def render_dataflow_svg(flow: Any, meter: Meter | None = None) -> str:
    """:func:`render_svg` of a ``Dataflow``-like object (``.graph``, ``.node(id)``, ``.edges()``).

    With a :class:`Meter` (a view keeps one), a running flow's edges show their
    rates and its nodes their busy share.

    >>> from dora_notebook import Dataflow
    >>> render_dataflow_svg(Dataflow(echo=False)).count("no nodes")
    1
    """
    rows, busy = live_numbers(flow, meter)
    return render_svg(flow.graph, {s.id: flow.node(s.id) for s in flow.graph}, rows, busy)
