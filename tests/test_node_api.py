"""The whole ``dora.Node`` of dora-rs 1.1 on the embedded engine (SPEC section 3).

Each behaviour runs in a custom node of a real run. What dora-rs 1.1.0 does
was observed with ``dora run`` (dora-rs-cli 1.1.0, Python 3.11) on a small
dataflow whose nodes wrote down what they saw; the facts taken from it are
quoted where they are asserted.
"""

from __future__ import annotations

import ast
import importlib.util
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dora_notebook import Dataflow, DoraStatus
from dora_notebook.api import dora as our_dora
from dora_notebook.api.node import Node
from dora_notebook.core.observe import Report
from dora_notebook.errors import NodeError, UnsupportedError

from .waiting import wait_for


def dora_rs() -> Any:
    """dora-rs's own module (the reference), or skip."""
    if importlib.util.find_spec("dora") is None:
        pytest.skip("dora-rs is not installed: pip install dora-rs==1.1.0")
    import dora

    return dora


def pyi_names() -> tuple[set[str], set[str]]:
    """The module-level names and the ``Node`` methods that dora-rs's ``__init__.pyi`` lists."""
    spec = importlib.util.find_spec("dora")
    assert spec is not None and spec.origin is not None
    tree = ast.parse((Path(spec.origin).parent / "__init__.pyi").read_text())
    module = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))} - {
        "Enum"
    }  # documented, but not a name of the module (it is `_Enum` there)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Node")
    methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
    return module, methods


def run(flow: Dataflow, timeout: float = 10) -> None:
    flow.start()
    try:
        assert flow.wait(timeout), "the dataflow did not finish"
    finally:
        flow.stop()


def errors_of(flow: Dataflow) -> list[Report]:
    reports: list[Report] = []
    flow.subscribe(lambda r: reports.append(r) if r.kind == "error" else None)
    return reports


# -- no method is missing ------------------------------------------------------


def test_every_node_method_of_dora_rs_exists_here() -> None:
    """Fails as soon as dora-rs's Node (its pyi or the extension) has a method ours lacks."""
    dora = dora_rs()
    _, documented = pyi_names()
    real = {m for m in dir(dora.Node) if not m.startswith("_")}
    ours = set(dir(Node))
    assert documented - ours == set()
    assert real - ours == set()
    # The tensor pool is in the pyi only: the PyPI wheel is built without the feature.
    assert {"register_tensor_pool", "free_tensor_pool"} & real == set()


def test_every_name_of_the_dora_module_exists_here() -> None:
    dora = dora_rs()
    documented, _ = pyi_names()
    real = {n for n in dir(dora) if not n.startswith("_")} | {"__version__", "__author__"}
    ours = set(dir(our_dora))
    assert documented - ours == set()
    assert real - ours == set()


def test_what_only_the_dora_engine_has_raises_naming_method_and_engine() -> None:
    messages: dict[str, str] = {}

    def node() -> None:
        n = Node()
        calls = {
            "merge_external_events": lambda: n.merge_external_events(object()),
            "register_tensor_pool": lambda: n.register_tensor_pool({}),
            "write_tensor_pool": lambda: n.write_tensor_pool(pa.array([1]), {}),
            "read_tensor_pool": lambda: n.read_tensor_pool(pa.array([1])),
            "free_tensor_pool": lambda: n.free_tensor_pool(pa.array([1])),
        }
        for name, call in calls.items():
            try:
                call()
            except NotImplementedError as exc:  # as dora's MockNode raises for them
                assert isinstance(exc, UnsupportedError)
                messages[name] = str(exc)

    flow = Dataflow(echo=False)
    flow.add_node("n", node)
    run(flow)
    pool = [f"{verb}_tensor_pool" for verb in ("register", "write", "read", "free")]
    assert sorted(messages) == sorted(["merge_external_events", *pool])
    for name, message in messages.items():
        assert f"node 'n': Node.{name} needs" in message
        assert "--engine dora" in message
    assert "ROS 2 bridge" in messages["merge_external_events"]
    assert "1.1.0 wheel on PyPI lacks too" in messages["register_tensor_pool"]
    for make in (
        our_dora.Ros2Context,
        lambda: our_dora.Ros2QosPolicies(reliable=True),
        lambda: our_dora.Ros2Durability.Volatile,
    ):
        with pytest.raises(UnsupportedError, match=r"dora\.Ros2\w+.* needs .*--engine dora"):
            make()
    with pytest.raises(UnsupportedError, match=r"dora\.start_runtime"):
        our_dora.start_runtime()


# -- receiving -------------------------------------------------------------------

RECV_ASYNC = """
import asyncio
import builtins
from dora import Node

seen = builtins.NODE_API_SEEN

async def main():
    node = Node()
    seen.append(("timeout", await node.recv_async(timeout=0.01)))
    try:  # a cancelled await loses nothing
        await asyncio.wait_for(node.recv_async(), 0.01)
    except asyncio.TimeoutError:
        seen.append(("cancelled", None))
    builtins.NODE_API_GO.set()
    while (event := await node.recv_async()) is not None:
        seen.append((event["type"], event.get("id")))
    seen.append(("end", await node.recv_async()))

asyncio.run(main())
"""


@pytest.fixture
def seen() -> Any:
    import builtins

    builtins.NODE_API_SEEN = []  # type: ignore[attr-defined]
    builtins.NODE_API_GO = threading.Event()  # type: ignore[attr-defined]
    yield builtins.NODE_API_SEEN  # type: ignore[attr-defined]
    del builtins.NODE_API_SEEN, builtins.NODE_API_GO  # type: ignore[attr-defined]


def test_recv_async_in_an_asyncio_loop_of_a_node_script(seen: list) -> None:
    import builtins

    def source() -> None:
        node = Node()
        builtins.NODE_API_GO.wait(5)  # type: ignore[attr-defined]
        for i in range(3):
            node.send_output("out", pa.array([i]))

    flow = Dataflow(echo=False)
    errors = errors_of(flow)
    flow.add_node("src", source, outputs=["out"])
    flow.add_node("n", RECV_ASYNC, inputs={"x": "src/out"})
    run(flow)
    assert errors == []
    kind, timeout = seen[0]
    assert kind == "timeout" and timeout["type"] == "ERROR"
    assert "Receiver timed out" in timeout["error"]
    assert seen[1:] == [
        ("cancelled", None),
        *[("INPUT", "x")] * 3,
        ("INPUT_CLOSED", "x"),
        ("STOP", "ALL_INPUTS_CLOSED"),
        ("end", None),  # dora 1.1: recv_async after the STOP gives None
    ]


def test_event_dicts_have_dora_keys() -> None:
    """The keys of each event type are dora-rs 1.1's.

    Their order cannot be matched: dora builds the dict from a Rust HashMap
    (``PyEvent::to_py_dict`` in apis/python/operator), so it differs from one
    event to the next within one run, e.g. ``['type', 'metadata', 'id',
    'kind', 'value']`` then ``['kind', 'value', 'metadata', 'id', 'type']``.
    Sets observed there: INPUT {id, kind, metadata, type, value},
    INPUT_CLOSED and STOP {id, kind, type}, ERROR {error, kind, type}.
    """
    keys: dict[str, set[str]] = {}
    go = threading.Event()

    def source() -> None:
        node = Node()
        go.wait(5)
        node.send_output("out", pa.array([1]))

    def node() -> None:
        n = Node()
        timeout = n.next(timeout=0.001)
        keys[timeout["type"]] = set(timeout)
        go.set()
        for event in n:
            keys[event["type"]] = set(event)

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["out"])
    flow.add_node("n", node, inputs={"x": "src/out"})
    run(flow)
    assert keys == {
        "ERROR": {"error", "kind", "type"},
        "INPUT": {"id", "kind", "metadata", "type", "value"},
        "INPUT_CLOSED": {"id", "kind", "type"},
        "STOP": {"id", "kind", "type"},
    }


# -- sending ---------------------------------------------------------------------


def test_send_output_raw_fills_in_place_and_receivers_get_that_memory() -> None:
    got: list = []
    facts: dict[str, Any] = {}

    def source() -> None:
        node = Node()
        with node.send_output_raw("out", 4, {"w": 2}) as buf:
            memoryview(buf)[:] = b"abcd"
        facts["address"] = pa.py_buffer(buf).address
        handler = node.send_output_raw("out", 3)
        view = handler.as_memoryview()
        view[:] = b"xyz"
        for name, call in [
            ("open view", handler.send),
            ("undeclared", lambda: node.send_output_raw("nope", 3)),
        ]:
            try:
                call()
            except RuntimeError as exc:
                facts[name] = str(exc)
        view.release()
        handler.send()
        for name, call in [("again", handler.send), ("after", handler.as_buffer)]:
            try:
                call()
            except RuntimeError as exc:
                facts[name] = str(exc)
        try:
            with node.send_output_raw("out", 2) as buf:
                raise KeyError("half written")
        except KeyError:
            facts["raised"] = True

    class Sink:
        def on_event(self, event: dict, send_output: Any) -> DoraStatus:
            if event["type"] == "INPUT":
                got.append(event)
            return DoraStatus.CONTINUE

    flow = Dataflow(echo=False)
    errors = errors_of(flow)
    flow.add_node("src", source, outputs=["out"])
    flow.add_operator("sink", Sink, inputs={"x": "src/out"})
    run(flow)
    assert errors == []
    # dora 1.1: a UInt8 array of the bytes written; metadata: the sender's plus timestamp.
    assert [e["value"].to_pylist() for e in got] == [list(b"abcd"), list(b"xyz")]
    assert got[0]["value"].type == pa.uint8()
    assert set(got[0]["metadata"]) == {"timestamp", "w"} and got[0]["metadata"]["w"] == 2
    assert got[0]["value"].buffers()[1].address == facts["address"]  # no copy
    # dora 1.1's words (its own message carries a view count we cannot know).
    assert facts["open view"].startswith("Cannot send: buffer view(s) are still open.")
    assert facts["again"] == "Sample has already been sent"
    assert facts["after"] == "Cannot access buffer: the sample has already been sent"
    assert "no output 'nope' (declared outputs: out)" in facts["undeclared"]
    assert facts["raised"] and len(got) == 2  # a with block that raised sent nothing


def test_service_request_and_response_round_trip() -> None:
    facts: dict[str, Any] = {}
    logs: list[Report] = []

    def client() -> None:
        node = Node()
        facts["id"] = node.send_service_request("req", pa.array([5]), {"x": 1})
        for event in node:
            if event["type"] == "INPUT":
                facts.setdefault("responses", []).append(event)
                if len(facts["responses"]) == 2:
                    break  # closes `req`: the server's input, so it ends too

    def server() -> None:
        node = Node()
        for event in node:
            if event["type"] == "INPUT":
                facts["request"] = event
                reply = pa.array([event["value"][0].as_py() * 2])
                facts["returned"] = node.send_service_response("resp", reply, event["metadata"])
                node.send_service_response("resp", reply, {})  # warned, sent anyway

    flow = Dataflow(echo=False)
    flow.subscribe(lambda r: logs.append(r) if r.kind == "log" else None)
    flow.add_node("client", client, inputs={"resp": "server/resp"}, outputs=["req"])
    flow.add_node("server", server, inputs={"req": "client/req"}, outputs=["resp"])
    run(flow)
    request_id = facts["id"]
    assert uuid.UUID(request_id).version == 7  # dora 1.1: a UUID v7 string
    assert facts["request"]["metadata"]["request_id"] == request_id
    assert facts["request"]["metadata"]["x"] == 1
    assert facts["returned"] is None
    first, second = facts["responses"]
    assert first["value"].to_pylist() == [10]
    # dora 1.1: the response carries the request's metadata, its timestamp included.
    assert first["metadata"] == facts["request"]["metadata"]
    assert "request_id" not in second["metadata"]
    warned = [r.data for r in logs if r.node_id == "server"]
    assert [(d["stdio"], d["line"]) for d in warned] == [
        (
            "warning",
            "send_service_response: metadata is missing 'request_id' \u2014 response will "
            "not be matched to a request",
        )
    ]


# -- logging, time, restarts -----------------------------------------------------


def test_log_lines_reach_the_panel_with_their_level() -> None:
    logs: list[Report] = []

    def node() -> None:
        n = Node()
        n.log("info", "hello", target="tgt", fields={"a": "b"})
        n.log_error("e")
        n.log_warn("w")
        n.log_info("i")
        n.log_debug("d")
        n.log_trace("t")
        n.log("bogus", "x")  # dora 1.1 logs an unknown level as INFO

    flow = Dataflow(echo=False)
    flow.subscribe(lambda r: logs.append(r) if r.kind == "log" else None)
    flow.add_node("n", node)
    run(flow)
    lines = [(r.data["stdio"], r.data["line"]) for r in logs]
    assert lines == [
        ("info", "tgt hello"),  # dora run prints `INFO n: tgt hello`
        ("error", "e"),
        ("warning", "w"),
        ("info", "i"),
        ("debug", "d"),
        ("trace", "t"),
        ("info", "x"),
    ]
    assert logs[0].data["fields"] == {"a": "b"} and logs[0].data["target"] == "tgt"


def test_timestamp_is_utc_and_never_goes_back() -> None:
    stamps: list[datetime] = []

    def node() -> None:
        n = Node()
        stamps.extend(n.timestamp() for _ in range(1000))

    flow = Dataflow(echo=False)
    flow.add_node("n", node)
    run(flow)
    assert all(s.tzinfo is timezone.utc for s in stamps)
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_a_hot_swapped_custom_node_is_a_restart() -> None:
    runs: list[tuple[str, bool, int]] = []

    def version(tag: str):
        def run_node() -> None:
            node = Node()
            runs.append((tag, node.is_restart(), node.restart_count()))
            for _ in node:
                pass

        return run_node

    flow = Dataflow(echo=False)
    flow.add_node("n", version("old"))
    flow.start()
    try:
        wait_for(lambda: len(runs) == 1, 5, "the first version")
        flow.add_node("n", version("new"), replace=True)
        wait_for(lambda: len(runs) == 2, 5, "the new version")
    finally:
        flow.stop()
    assert runs == [("old", False, 0), ("new", True, 1)]


# -- the extension store ---------------------------------------------------------


def test_extension_store_load_drop_notify_and_reclaim_on_exit() -> None:
    facts: dict[str, Any] = {}
    stored, loaded, dropped, owner_gone = (threading.Event() for _ in range(4))

    def owner() -> None:
        node = Node()
        node.extension_store("ns", "k", b"v")
        node.extension_store("ns", "k", b"v2")  # the owner may overwrite
        node.extension_store("ns", "mine", b"m")
        stored.set()
        loaded.wait(5)
        node.extension_drop("ns", "k")
        node.extension_drop("ns", "k")  # absent: fine
        facts["owner drained"] = node.drain_dropped_extension_keys("ns")
        dropped.set()

    def reader() -> None:
        node = Node()
        stored.wait(5)
        facts["loaded"] = node.extension_load("ns", "k")
        facts["mine"] = node.extension_load("ns", "mine")
        facts["absent"] = node.extension_load("ns", "zz")
        try:
            node.extension_store("ns", "k", b"x")
        except NodeError as exc:
            facts["foreign"] = str(exc)
        node.extension_store("ns", "once", b"o")
        facts["removed"] = node.extension_load("ns", "once", remove=True)
        facts["after remove"] = node.extension_load("ns", "once")
        loaded.set()
        dropped.wait(5)
        owner_gone.wait(5)
        facts["reader drained"] = node.drain_dropped_extension_keys("ns")
        facts["again"] = node.drain_dropped_extension_keys("ns")
        facts["reclaimed"] = node.extension_load("ns", "mine")

    flow = Dataflow(echo=False)
    errors = errors_of(flow)
    flow.add_node("owner", owner)
    flow.add_node("reader", reader)
    flow.subscribe(
        lambda r: owner_gone.set() if (r.node_id, r.data) == ("owner", "finished") else None
    )
    run(flow)
    assert errors == []
    assert (facts["loaded"], facts["mine"], facts["absent"]) == (b"v2", b"m", None)
    assert "extension key `ns/k` is owned by node 'owner'" in facts["foreign"]
    assert (facts["removed"], facts["after remove"]) == (b"o", None)
    # dora 1.1: whoever stored or read a key is told of its drop, the dropper included.
    assert facts["owner drained"] == ["k"]
    # `mine` went when its owner's code exited; the reader had read it.
    assert facts["reader drained"] == ["once", "k", "mine"]
    assert facts["again"] == [] and facts["reclaimed"] is None
