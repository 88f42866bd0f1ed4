"""%dora_record in a real kernel, as a user types it: start, run, status, save; then the
file read back with plain pandas in the test, and the one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from .kernel import Kernel, define

pytestmark = pytest.mark.usefixtures("fresh_graph")

#: Sends N on its output n for each of 12 ticks (a list of `WIDTH` copies), then stops.
TICKER = """
import pyarrow as pa
from dora import DoraStatus

class Operator:
    def __init__(self):
        self.n = 0

    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            self.n += 1
            send_output("n", pa.array([self.n] * WIDTH), {"n": self.n})
            if self.n == 12:
                return DoraStatus.STOP
        return DoraStatus.CONTINUE
"""

DOUBLER = """
import pyarrow.compute as pc

class Operator:
    def on_event(self, event, send_output):
        if event["type"] == "INPUT":
            send_output("d", pc.multiply(event["value"], 2), event["metadata"])
"""


def define_graph(kernel: Kernel, width: int = 1) -> None:
    define(
        kernel,
        "%%dora_operator ticker --inputs tick=dora/timer/millis/10 --outputs n",
        TICKER.replace("WIDTH", str(width)),
    )
    define(kernel, "%%dora_operator doubler --inputs n=ticker/n --outputs d", DOUBLER)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_record_every_edge_run_save_and_read_it_with_pandas(
    kernel: Kernel, tmp_path: Path, suffix: str
) -> None:
    define_graph(kernel)
    started = kernel.execute("%dora_record start")
    assert lines(started.text) == [
        "recording every edge and timer (budget 256.0 MB); records from the next %dora_start"
    ]
    armed = kernel.execute("%dora_record status")
    assert lines(armed.text)[0].startswith("armed (records from the next %dora_start): 0 messages")
    kernel.execute("%dora_start --wait --timeout 20")
    status = lines(kernel.execute("%dora_record status").text)
    # 12 on ticker/n, 12 on doubler/d, and the timer's ticks (12 or a few more).
    found = re.fullmatch(
        r"stopped: (\d+) messages on 3 edges, ([\d.]+ [KM]?B) of 256\.0 MB, 0 dropped", status[0]
    )
    assert found is not None and len(status) == 1, status
    count = int(found.group(1))
    assert count >= 36
    path = tmp_path / f"run{suffix}"
    saved = lines(kernel.execute(f"%dora_record save {path}").text)
    assert len(saved) == 1, saved
    where = re.escape(str(path))
    pattern = rf"saved {count} messages \([\d.]+ [KM]?B\) to {where} in [\d.]+ s, [\d.]+ MB/s"
    assert re.fullmatch(pattern, saved[0]), saved

    # The file, read as any pandas user would.
    frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_feather(path)
    assert len(frame) == count
    assert list(frame.columns) == [
        "node",
        "output",
        "seq",
        "send_time",
        "receive_time",
        "metadata",
        "type",
        "value",
        "number",
        "cause",
    ]
    edges = frame.groupby(["node", "output"]).size().to_dict()
    assert edges[("ticker", "n")] == edges[("doubler", "d")] == 12
    assert edges[("dora", "timer/millis/10")] == count - 24
    ticker = frame[frame["node"] == "ticker"]
    assert ticker["seq"].tolist() == list(range(12))
    assert [json.loads(m) for m in ticker["metadata"]] == [{"n": n} for n in range(1, 13)]
    values = [pa.ipc.open_stream(v).read_all().column("value").to_pylist() for v in ticker["value"]]
    assert values == [[n] for n in range(1, 13)]
    doubled = frame[frame["node"] == "doubler"]["value"]
    assert [pa.ipc.open_stream(v).read_all().column(0).to_pylist() for v in doubled] == [
        [2 * n] for n in range(1, 13)
    ]
    assert (frame["receive_time"] >= frame["send_time"]).all()
    # Which input each message answered: the engine's numbers, unique in the run.
    assert frame["number"].is_unique and (frame["number"] >= 0).all()
    ticks = frame[frame["node"] == "dora"]
    assert set(ticker["cause"]) <= set(ticks["number"])  # each n answered a tick
    assert ticker["cause"].is_monotonic_increasing and ticker["cause"].is_unique
    assert frame[frame["node"] == "doubler"]["cause"].tolist() == ticker["number"].tolist()
    assert (ticks["cause"] == -1).all()
    # And from the kernel's own Python: the recording, live, as pandas.
    frame_rows = kernel.execute(
        "import dora_notebook; r = dora_notebook.current().recording; "
        "print(len(r.to_pandas()), type(r) is dora_notebook.Recording)"
    )
    assert frame_rows.text.split() == [str(count), "True"]


def test_named_edges_within_a_small_budget_drop_the_oldest_and_say_how_many(
    kernel: Kernel, tmp_path: Path
) -> None:
    define_graph(kernel, width=100)  # 800 B a message
    started = kernel.execute("%dora_record start ticker/n --max-mb 0.002")  # 2097 B: two fit
    assert lines(started.text) == [
        "recording ticker/n (budget 2.0 KB); records from the next %dora_start"
    ]
    kernel.execute("%dora_start --wait --timeout 20")
    status = lines(kernel.execute("%dora_record status").text)
    assert status == [
        "stopped: 2 messages on 1 edge, 1.6 KB of 2.0 KB, 10 dropped",
        "dropped: ticker/n 10",
    ]
    kernel.execute(f"%dora_record save {tmp_path / 'small.arrow'}")
    frame = pd.read_feather(tmp_path / "small.arrow")
    assert frame["seq"].tolist() == [10, 11]  # the newest two; the gap shows the drops


def test_a_recording_started_while_the_graph_runs_and_stopped_by_hand(kernel: Kernel) -> None:
    define(
        kernel,
        "%%dora_operator ticker --inputs tick=dora/timer/millis/10 --outputs n",
        TICKER.replace("WIDTH", "1").replace("self.n == 12", "self.n == 10**6"),
    )
    kernel.execute("%dora_start")
    started = kernel.execute("%dora_record start ticker/n")
    assert lines(started.text) == ["recording ticker/n (budget 256.0 MB)"]
    kernel.execute(
        "import time, dora_notebook\n"
        "r = dora_notebook.current().recording\n"
        "deadline = time.monotonic() + 10\n"
        "while len(r) < 3 and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)"
    )
    stopped = lines(kernel.execute("%dora_record stop").text)
    found = re.fullmatch(r"stopped: (\d+) messages on 1 edge, .*, 0 dropped", stopped[0])
    assert found is not None and int(found.group(1)) >= 3, stopped
    # Still running, but nothing more is kept; a recording's seq starts at its start.
    after = kernel.execute("print(len(r), r.messages()[0].seq, dora_notebook.current().running)")
    assert after.text.split() == [found.group(1), "0", "True"]
    kernel.execute("%dora_stop")


def test_dora_record_errors_are_one_line_each(kernel: Kernel, tmp_path: Path) -> None:
    def error(line: str) -> str:
        result = kernel.execute(line, allow_error=True)
        assert result.error is None, result.error  # a UsageError, not a traceback
        text = lines(result.text)
        assert len(text) == 1, text
        return text[0]

    assert (
        "no recording: start one with %dora_record start"
        in kernel.execute("%dora_record status").text
    )
    assert "nothing to record: the dataflow has no nodes" in error("%dora_record start")
    assert "nothing to save: start a recording with %dora_record start" in error(
        f"%dora_record save {tmp_path / 'x.arrow'}"
    )
    define_graph(kernel)
    assert "record 'nope/x': no node 'nope' (nodes: ticker, doubler)" in error(
        "%dora_record start nope/x"
    )
    assert "node 'ticker' has no output 'm' (declared: n)" in error("%dora_record start ticker/m")
    assert "no node takes this timer" in error("%dora_record start dora/timer/secs/1")
    assert "--max-mb must be a positive number of megabytes, not 0" in error(
        "%dora_record start --max-mb 0"
    )
    assert "invalid choice: 'begin'" in error("%dora_record begin")
    assert "--max-mb applies to %dora_record start, not stop" in error(
        "%dora_record stop --max-mb 3"
    )
    assert "%dora_record status takes no argument" in error("%dora_record status ticker/n")
    kernel.execute("%dora_record start")
    assert "give one file: %dora_record save PATH" in error("%dora_record save")
    assert "'run.csv': the name must end in .arrow (Arrow IPC) or .parquet" in error(
        f"%dora_record save {tmp_path / 'run.csv'}"
    )
    assert not (tmp_path / "run.csv").exists()


def test_dora_record_has_help(kernel: Kernel) -> None:
    shown = kernel.execute("%dora_record -h").text
    assert "%dora_record start [EDGE ...] [--max-mb N]" in shown
    assert "start|stop|status|save" in shown and "--max-mb N" in shown
    msg_id = kernel.client.execute("%dora_record?")
    reply = kernel.reply(msg_id, timeout=30)
    pages = [p for p in reply["content"].get("payload", []) if p.get("source") == "page"]
    assert pages and "save PATH" in pages[0]["data"]["text/plain"]
