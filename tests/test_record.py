"""Recordings (core/record.py) and their engine side: what is kept, by reference, within
the budget; files plain pyarrow and pandas read; Dataflow.record on the embedded engine."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dora_notebook import Dataflow, DataflowError, GraphError, Recording
from dora_notebook.core import record
from dora_notebook.core.record import SCHEMA, SCHEMA_KEY, RecordingError, decode_value

from .waiting import wait_for

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


def payload(nbytes: int, fill: int = 0) -> pa.Array:
    return pa.array(np.full(nbytes, fill, np.uint8))


# -- the budget ------------------------------------------------------------------------


def test_the_budget_keeps_the_newest_messages_and_counts_every_drop_per_edge() -> None:
    # 10 messages of 100 B on a, 5 of 300 B on b, interleaved; 1000 B of budget.
    rec = Recording(max_bytes=1000)
    sent = []
    for i in range(10):
        rec.record("n", "a", payload(100, i), {"i": i})
        sent.append(("n/a", i, 100))
        if i % 2:
            rec.record("n", "b", payload(300, i), {"i": i})
            sent.append(("n/b", i // 2, 300))
    # What fits, newest first, is what must stay.
    kept, total = [], 0
    for edge, seq, size in reversed(sent):
        if total + size > 1000:
            break
        kept.append((edge, seq))
        total += size
    kept.reverse()
    assert [(m.edge, m.seq) for m in rec.messages()] == kept
    assert rec.nbytes == total <= rec.max_bytes
    expected = {}
    for edge, _, _ in sent[: len(sent) - len(kept)]:
        expected[edge] = expected.get(edge, 0) + 1
    assert rec.dropped_by_edge() == expected
    assert rec.dropped == len(sent) - len(kept) == sum(expected.values())
    assert f"{len(kept)} messages on 2 edges" in rec.status()
    assert f"{rec.dropped} dropped" in rec.status()


def test_a_message_larger_than_the_budget_is_dropped_at_once_and_counted() -> None:
    rec = Recording(max_bytes=50)
    rec.record("n", "a", payload(10), {})
    rec.record("n", "a", payload(51), {})
    assert len(rec) == 0 and rec.nbytes == 0
    assert rec.dropped_by_edge() == {"n/a": 2}


def test_messages_lost_in_transport_leave_a_gap_in_seq_and_are_counted(tmp_path: Path) -> None:
    rec = Recording()
    edge = rec.recorder("n", "a")
    edge.record(payload(1), {})
    edge.skip(2)  # what the dora engine does when a node's own numbering skips two
    edge.record(payload(1), {})
    assert [m.seq for m in rec.messages()] == [0, 3]
    assert rec.lost_by_edge() == {"n/a": 2} and rec.dropped_by_edge() == {}
    assert rec.status().endswith(", 0 dropped, 2 lost in transport")
    assert Recording.load(rec.save(tmp_path / "gap.arrow")).lost_by_edge() == {"n/a": 2}


def test_a_stopped_recording_keeps_what_it_had_and_takes_nothing_more() -> None:
    rec = Recording()
    rec.record("n", "a", payload(4), {})
    rec.stop()
    rec.record("n", "a", payload(4), {})
    assert len(rec) == 1 and not rec.active and not rec.wants("n", "a")
    assert rec.status().startswith("stopped: 1 messages on 1 edge,")


def test_only_the_edges_asked_for_are_recorded() -> None:
    rec = Recording(edges=[("n", "a")])
    rec.record("n", "a", payload(1), {})
    rec.record("n", "b", payload(1), {})
    assert [m.edge for m in rec.messages()] == ["n/a"]
    assert rec.recorded_edges() == ["n/a"]


def test_the_metadata_is_kept_as_sent_even_if_a_receiver_changes_its_dict() -> None:
    rec = Recording()
    meta = {"timestamp": T0, "k": 1}
    rec.record("n", "a", payload(1), meta)
    meta["k"] = 2  # as an operator that stamps the dict it was handed does
    (message,) = rec.messages()
    assert message.metadata == {"k": 1} and message.send_time == T0
    assert message.receive_time >= message.send_time


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(RecordingError, match="must be positive"):
        Recording(max_bytes=0)


# -- files -----------------------------------------------------------------------------


def _image_recording() -> tuple[Recording, list[pa.Array]]:
    """Two edges: 640x480 rgb8 frames with dora's image metadata, and raw binary blobs."""
    rng = np.random.default_rng(7)
    rec = Recording(max_bytes=64 << 20, graph={"cam": {"kind": "node", "code": "print(1)"}})
    values = []
    for i in range(3):
        frame = pa.array(rng.integers(0, 256, 640 * 480 * 3, dtype=np.uint8))
        meta = {
            "timestamp": T0 + timedelta(milliseconds=33 * i, microseconds=7),
            "width": 640,
            "height": 480,
            "encoding": "rgb8",
            "nested": {"list": [1, 2.5, "x"], "none": None},
        }
        rec.record("cam", "image", frame, meta)
        blob = pa.array([rng.bytes(100_000), b""], pa.binary())
        rec.record("cam", "blob", blob, {"timestamp": meta["timestamp"], "i": i})
        values += [frame, blob]
    rec.stop()
    return rec, values


@pytest.mark.parametrize("suffix", [".arrow", ".parquet"])
def test_save_then_load_gives_back_every_message_its_values_and_metadata(
    tmp_path: Path, suffix: str
) -> None:
    rec, values = _image_recording()
    path = rec.save(tmp_path / f"run{suffix}")
    assert path == tmp_path / f"run{suffix}" and rec.path == path
    assert not list(tmp_path.glob("*.part"))  # written aside, then renamed into place
    loaded = Recording.load(path)
    before, after = rec.messages(), loaded.messages()
    assert [(m.node, m.output, m.seq) for m in after] == [(m.node, m.output, m.seq) for m in before]
    for old, new, value in zip(before, after, values, strict=True):
        assert new.value.equals(value) and new.value.type == value.type
        assert new.metadata == old.metadata
        assert new.send_time == old.send_time
        assert new.receive_time == old.receive_time
    assert loaded.graph == rec.graph and not loaded.active and loaded.path == path
    assert loaded.dropped_by_edge() == rec.dropped_by_edge()


@pytest.mark.parametrize("suffix", [".arrow", ".parquet"])
def test_a_saved_recording_is_read_by_plain_pyarrow_and_pandas(tmp_path: Path, suffix: str) -> None:
    rec, values = _image_recording()
    path = rec.save(tmp_path / f"run{suffix}")
    if suffix == ".parquet":
        table = pq.read_table(path)
        frame = pd.read_parquet(path)
    else:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        frame = pd.read_feather(path)
    assert table.schema.remove_metadata().equals(SCHEMA)
    assert list(frame.columns) == SCHEMA.names and len(frame) == len(values)
    description = json.loads(table.schema.metadata[SCHEMA_KEY])
    assert description["graph"] == rec.graph
    first = frame.iloc[0]
    assert (first["node"], first["output"], first["seq"]) == ("cam", "image", 0)
    assert first["send_time"] == pd.Timestamp(T0 + timedelta(microseconds=7))
    assert json.loads(first["metadata"])["encoding"] == "rgb8"
    assert first["type"] == "uint8"
    # A value is Arrow IPC: plain pyarrow reads it back.
    image = pa.ipc.open_stream(first["value"]).read_all().column("value")
    assert image.combine_chunks().equals(values[0])
    assert decode_value(frame.iloc[1]["value"]).equals(values[1])


@pytest.mark.parametrize("suffix", [".arrow", ".parquet"])
def test_a_save_in_many_batches_keeps_every_value_apart(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every batch is written into the one buffer the last one used: what was written
    # must be what each message held, batch after batch.
    monkeypatch.setattr(record, "_BATCH_BYTES", 20_000)
    rec = Recording()
    values = [payload(5_000 + i, fill=i) for i in range(40)]
    for i, value in enumerate(values):
        rec.record("n", "a" if i % 3 else "b", value, {"i": i})
    loaded = Recording.load(rec.save(tmp_path / f"many{suffix}"))
    kept = [m.value for m in loaded.messages()]
    assert len(kept) == 40 and all(k.equals(v) for k, v in zip(kept, values, strict=True))
    assert [m.metadata["i"] for m in loaded.messages()] == list(range(40))
    table = pq.read_table(loaded.path) if suffix == ".parquet" else None
    assert table is None or table.num_rows == 40


def test_to_pandas_has_one_row_per_message_with_python_values() -> None:
    rec = Recording()
    rec.record("n", "a", pa.array([1, 2]), {"timestamp": T0, "k": "v"})
    frame = rec.to_pandas()
    assert list(frame.columns) == [*SCHEMA.names[:6], "value", "number", "cause"]
    row = frame.iloc[0]
    assert (row["node"], row["output"], row["seq"], row["value"]) == ("n", "a", 0, [1, 2])
    assert row["metadata"] == {"k": "v"} and row["send_time"] == T0


def test_an_empty_recording_saves_and_loads(tmp_path: Path) -> None:
    rec = Recording()
    loaded = Recording.load(rec.save(tmp_path / "empty.parquet"))
    assert len(loaded) == 0 and loaded.messages() == []


def test_file_errors_say_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    rec = Recording()
    with pytest.raises(RecordingError, match=r"'run\.csv': the name must end in \.arrow"):
        rec.save(tmp_path / "run.csv")
    with pytest.raises(RecordingError, match="no recording at"):
        Recording.load(tmp_path / "missing.arrow")
    (tmp_path / "junk.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(RecordingError, match=r"junk\.arrow: not a recording"):
        Recording.load(tmp_path / "junk.arrow")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(RecordingError, match="no column 'node'"):
        Recording.load(tmp_path / "other.parquet")


# -- on the embedded engine ----------------------------------------------------------------

COUNTER = """
from dora import Node
import pyarrow as pa
node = Node()
n = 0
for event in node:
    if event["type"] == "INPUT":
        node.send_output("n", pa.array([n]), {"k": n})
        n += 1
        if n == COUNT:
            break
"""

FORWARD = """
class Operator:
    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            send_output("d", event["value"], event["metadata"])
"""


def counter_flow(count: int = 5) -> Dataflow:
    flow = Dataflow(echo=False)
    flow.add_node(
        "src",
        COUNTER.replace("COUNT", str(count)),
        inputs={"tick": "dora/timer/hz/200"},
        outputs=["n", "unused"],
    )
    flow.add_operator("fwd", FORWARD, inputs={"n": "src/n"}, outputs=["d"])
    return flow


def test_a_recording_armed_before_start_gets_every_output_and_timer_from_the_first() -> None:
    flow = counter_flow()
    rec = flow.record()
    assert flow.recording is rec and rec.status().startswith("armed")
    flow.start()
    assert flow.wait(10)
    flow.stop()
    assert not rec.active  # a recording is of one run
    rows = [(m.node, m.output, m.seq, m.metadata) for m in rec.messages()]
    src = [r for r in rows if r[0] == "src"]
    fwd = [r for r in rows if r[0] == "fwd"]
    assert src == [("src", "n", i, {"k": i}) for i in range(5)]
    assert fwd == [("fwd", "d", i, {"k": i}) for i in range(5)]
    ticks = [r for r in rows if r[0] == "dora"]
    # hz/200 is recorded under the spelling dora expand gives it; the node broke after 5.
    assert len(ticks) >= 5 and {r[1] for r in ticks} == {"timer/millis/5"}
    assert [r[2] for r in ticks] == list(range(len(ticks)))
    # The graph as it started: wiring and code.
    assert rec.graph["src"]["inputs"] == {"tick": "dora/timer/millis/5"}
    assert rec.graph["src"]["outputs"] == ["n", "unused"]
    assert rec.graph["fwd"] == {
        "kind": "operator",
        "inputs": {"n": "src/n"},
        "outputs": ["d"],
        "code": FORWARD,
    }


def test_values_are_kept_by_reference_the_very_array_the_node_sent() -> None:
    arrays = [pa.array(np.arange(1000, dtype=np.int32) + i) for i in range(3)]
    received = []

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        for array in arrays:
            node.send_output("frame", array, {})

    class Sink:
        def on_event(self, event, send_output):
            if event["type"] == "INPUT":
                received.append(event["value"])

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["frame"])
    flow.add_operator("sink", Sink, inputs={"frame": "src/frame"})
    rec = flow.record(["src/frame"])
    flow.start()
    assert flow.wait(10)
    flow.stop()
    kept = [m.value for m in rec.messages()]
    assert len(kept) == 3
    assert all(k is a for k, a in zip(kept, arrays, strict=True))
    assert all(r is a for r, a in zip(received, arrays, strict=True))


def test_a_recording_started_while_the_graph_runs_records_from_then_on() -> None:
    go = threading.Event()

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        for i in range(3):
            node.send_output("n", pa.array([i]), {})
        go.wait(10)
        for i in range(3, 6):
            node.send_output("n", pa.array([i]), {})

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["n"])
    flow.add_operator("fwd", FORWARD, inputs={"n": "src/n"}, outputs=["d"])
    flow.start()
    wait_for(lambda: flow.node("fwd").sent == 3, 10, "the first three forwarded")
    rec = flow.record(["src/n", "fwd/d"])
    assert rec.status().startswith("recording: 0 messages")
    go.set()
    assert flow.wait(10)
    flow.stop()
    for node, output in ("src", "n"), ("fwd", "d"):
        kept = rec.messages(node, output)
        assert [(m.value[0].as_py(), m.seq) for m in kept] == [(i, i - 3) for i in range(3, 6)]


def test_a_tapped_output_being_recorded_feeds_both() -> None:
    flow = counter_flow(4)
    flow.tap("src/n", 10)
    rec = flow.record(["src/n"])
    flow.start()
    assert flow.wait(10)
    flow.stop()
    assert flow.tap("src/n", 10)["value"].tolist() == [[i] for i in range(4)]
    assert [m.value[0].as_py() for m in rec.messages()] == list(range(4))


def test_a_new_recording_stops_the_last_and_a_reset_stops_and_forgets_the_live_one() -> None:
    flow = counter_flow()
    first = flow.record()
    second = flow.record(["src/n"], max_mb=0.5)
    assert not first.active and second.active and flow.recording is second
    assert second.max_bytes == 1 << 19
    flow.clear()
    assert not second.active and flow.recording is None


def test_an_output_a_hot_swap_adds_is_recorded_when_every_edge_is() -> None:
    go = threading.Event()

    def source() -> None:
        from dora_notebook import Node

        node = Node()
        node.send_output("n", pa.array([0]), {})
        go.wait(10)
        node.send_output("n", pa.array([1]), {})

    flow = Dataflow(echo=False)
    flow.add_node("src", source, outputs=["n"])
    flow.add_operator("fwd", FORWARD, inputs={"n": "src/n"}, outputs=["d"])
    rec = flow.record()
    flow.start()
    wait_for(lambda: flow.node("fwd").sent == 1, 10, "the first forwarded")
    flow.add_operator(
        "fwd", FORWARD.replace('"d"', '"e"'), inputs={"n": "src/n"}, outputs=["e"], replace=True
    )
    go.set()
    assert flow.wait(10)
    flow.stop()
    assert [m.edge for m in rec.messages() if m.node == "fwd"] == ["fwd/d", "fwd/e"]


def test_record_refuses_what_the_graph_does_not_have_in_one_line() -> None:
    with pytest.raises(GraphError, match="the dataflow has no nodes"):
        Dataflow(echo=False).record()
    flow = counter_flow()
    with pytest.raises(GraphError, match=r"record 'cam/n': no node 'cam' \(nodes: src, fwd\)"):
        flow.record(["src/n", "cam/n"])
    with pytest.raises(GraphError, match=r"record 'src': no node 'src'"):
        flow.record("src")
    with pytest.raises(GraphError, match=r"node 'fwd' has no output 'x' \(declared: d\)"):
        flow.record(["fwd/x"])
    with pytest.raises(GraphError, match=r"no node takes this timer \(timers: dora/timer/millis/5"):
        flow.record(["dora/timer/millis/7"])
    with pytest.raises(GraphError, match="is not a timer"):
        flow.record(["dora/logs"])
    with pytest.raises(DataflowError, match="max_mb must be a positive number"):
        flow.record(max_mb=0)
    assert flow.recording is None  # nothing was started by a refused call
    # Both spellings of one timer name it.
    assert flow.record(["dora/timer/hz/200"]).edges == {("dora", "timer/millis/5")}


def test_a_send_logs_as_output_is_recorded_like_any_other() -> None:
    flow = Dataflow(echo=False)
    spec = flow.add_node(
        "talker",
        "from dora import Node\nnode = Node()\nprint('one')\nprint('two')\n",
        outputs=["logs_out"],
    )
    spec.extra["send_logs_as"] = "logs_out"  # dora's field: each log record is sent there
    rec = flow.record()
    flow.start()
    assert flow.wait(10)
    flow.stop()
    kept = rec.messages("talker", "logs_out")
    assert [json.loads(m.value[0].as_py())["message"] for m in kept] == ["one", "two"]
