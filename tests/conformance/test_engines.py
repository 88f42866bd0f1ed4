"""Conformance from a notebook: every dataflow here runs the same on both engines.

Each ``<name>/dataflow.yml`` is loaded, as a user of a notebook would load it
(``%dora_dataflow dataflow.yml`` in a real kernel, or ``Dataflow.from_yaml``),
and run twice: with ``%dora_start --wait`` on the embedded engine and with
``%dora_start --engine dora --wait`` on dora-rs. The records the nodes write
(see ``recorder.py``) are compared exactly as :mod:`.test_conformance`
compares ``dora-notebook run`` with ``dora run``, with its helpers: node by
node, input by input for the nodes whose inputs race under dora-rs, and
``queue_overflow`` by the properties that hold under both.

As there, each run gets a fresh copy of the dataflow folder with
``recorder.py`` beside its nodes. The embedded engine runs in the process
(the kernel, or this one), in that folder, as ``%dora_dataflow`` users run
it; the dora engine runs the nodes in a private export folder that it
removes at the end, so its nodes are told, through the environment they
inherit, to write their records into the copy (``recorder.OUT_DIR_ENV``).

dora-rs loses a message now and then on a busy machine: as in
:func:`.test_conformance.run_and_check`, a failed comparison runs the dora
engine once more, in a new folder, before it counts; the embedded engine
runs once. A few dataflows go through a real kernel; the others use the
Python API, which the magics call, to keep the time down.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dora_notebook import Dataflow
from dora_notebook.dora_rs.bridge import BRIDGE_ID

from ..kernel import Kernel
from .recorder import OUT_DIR, OUT_DIR_ENV
from .test_conformance import (
    DATAFLOWS,
    DORA_ATTEMPTS,
    HERE,
    INHERITED,
    RECORDER,
    STOP_AFTER,
    Records,
    Run,
    _load_records,
    assert_clean,
    assert_same_records,
    check_queue_overflow,
)

pytestmark = pytest.mark.dora

#: Driven through a real kernel: the process environment, working directory,
#: argv and ``__name__`` of nodes in a kernel; large and varied payloads;
#: STOP and INPUT_CLOSED.
IN_KERNEL = ["node_env", "payloads", "stop_propagation"]
#: The rest, through the Python API.
IN_PROCESS = [name for name in DATAFLOWS if name not in IN_KERNEL]
#: How long one cell running a graph may take at most (dora's start included).
CELL_TIMEOUT = STOP_AFTER + 45.0

Runner = Callable[[str, str, Path], Run]


def test_every_dataflow_is_covered() -> None:
    """Each conformance dataflow runs here once, some of them through a kernel."""
    assert set(IN_KERNEL) <= set(DATAFLOWS) and len(IN_KERNEL) >= 3
    assert sorted(IN_KERNEL + IN_PROCESS) == DATAFLOWS


def copy_dataflow(name: str, folder: Path) -> Path:
    """A fresh copy of dataflow ``name`` with ``recorder.py`` beside its nodes."""
    shutil.copytree(HERE / name, folder, ignore=shutil.ignore_patterns("__pycache__", OUT_DIR))
    shutil.copy2(RECORDER, folder / RECORDER.name)
    return folder


def label(engine: str) -> str:
    return "dora engine" if engine == "dora" else "embedded engine"


def compare_engines(name: str, tmp_path: Path, run: Runner, report: Callable[[str], None]) -> None:
    """Run ``name`` on the embedded engine, then on the dora engine, and compare the records.

    ``run(name, engine, folder)`` runs one copy of the dataflow. A dora
    engine run that fails the comparison is repeated, up to
    :data:`~.test_conformance.DORA_ATTEMPTS` runs in all (each retry is reported).
    """
    embedded = run(name, "embedded", tmp_path / "embedded")
    assert_clean(embedded)
    for attempt in range(1, DORA_ATTEMPTS + 1):
        dora = run(name, "dora", tmp_path / f"dora-{attempt}")
        try:
            assert_clean(dora)
            if name == "queue_overflow":
                check_queue_overflow(dora, embedded, report)
            else:
                assert_same_records(name, dora, embedded, report)
            return
        except AssertionError as exc:
            if attempt == DORA_ATTEMPTS:
                raise
            first_line = (str(exc).strip().splitlines() or ["?"])[0]
            report(f"{name}: dora engine run {attempt} failed the check ({first_line}); again")


def _records(engine: str, folder: Path) -> Records:
    """What the nodes recorded; on the dora engine, without the kernel's bridge node.

    The dora engine's dataflow has one node more than the file: the bridge, a
    dynamic node taking the nodes' reports and outputs, which node code sees in
    ``node.dataflow_descriptor()`` (README says so). Everything else compares as is.
    """
    records = _load_records(folder)
    if engine != "dora":
        return records
    for entries in records.values():
        for entry in entries:
            note = entry.get("note")
            if isinstance(note, dict) and isinstance(note.get("descriptor_node_ids"), list):
                note["descriptor_node_ids"] = [
                    n for n in note["descriptor_node_ids"] if n != BRIDGE_ID
                ]
    return records


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[str], None]]:
    """Print lines in the test output even when pytest captures it."""
    lines: list[str] = []
    yield lines.append
    if lines:
        with capsys.disabled():
            print("".join(f"\n    {line}" for line in lines))


# -- through the Python API ----------------------------------------------------------------


@pytest.fixture
def api_runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Runner]:
    """Runs dataflows in this process; what the embedded engine imports stays in the test.

    The embedded engine puts node folders on ``sys.path`` and keeps the
    helper modules nodes import (``recorder``, ``helpers``) in ``sys.modules``.
    """
    monkeypatch.setattr(sys, "path", list(sys.path))
    for key, value in INHERITED.items():
        monkeypatch.setenv(key, value)

    def run(name: str, engine: str, folder: Path) -> Run:
        copy_dataflow(name, folder)
        monkeypatch.chdir(folder)
        if engine == "dora":
            monkeypatch.setenv(OUT_DIR_ENV, str(folder / OUT_DIR))
        else:
            monkeypatch.delenv(OUT_DIR_ENV, raising=False)
        flow = Dataflow.from_yaml(folder / "dataflow.yml", echo=False)
        start = time.monotonic()
        flow.start(engine=engine)
        try:
            finished = flow.wait(STOP_AFTER)
        finally:
            stuck = flow.stop()
        seconds = time.monotonic() - start
        states = [flow.node(spec.id) for spec in flow.graph]
        clean = finished and not stuck and all(s.status == "finished" for s in states)
        console = [s.summary() for s in states]
        console += [f"{s.node_id}: {line}" for s in states for line in s.log_text()]
        records = _records(engine, folder)
        return Run(label(engine), folder, 0 if clean else 1, seconds, "\n".join(console), records)

    yield run
    for module_name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).is_relative_to(tmp_path):
            del sys.modules[module_name]


@pytest.mark.parametrize("name", IN_PROCESS)
def test_engines_agree_from_the_python_api(
    name: str, tmp_path: Path, api_runner: Runner, report: Callable[[str], None]
) -> None:
    compare_engines(name, tmp_path, api_runner, report)


# -- through a real kernel ------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    """One kernel for the dataflows run through the magics; each test resets its graph."""
    kernel = Kernel()
    try:
        kernel.execute("%load_ext dora_notebook")
        kernel.execute(f"import os\nos.environ.update({INHERITED!r})")
        yield kernel
    finally:
        kernel.shutdown()


def kernel_runner(kernel: Kernel) -> Runner:
    """Runs dataflows with the magics: ``%dora_dataflow`` then ``%dora_start ... --wait``."""

    def run(name: str, engine: str, folder: Path) -> Run:
        copy_dataflow(name, folder)
        records = str(folder / OUT_DIR)
        environ = (
            f"os.environ[{OUT_DIR_ENV!r}] = {records!r}"
            if engine == "dora"
            else f"os.environ.pop({OUT_DIR_ENV!r}, None)"
        )
        kernel.execute(f"%dora_reset\nos.chdir({str(folder)!r})\n{environ}")
        loaded = kernel.execute("%dora_dataflow dataflow.yml")
        option = " --engine dora" if engine == "dora" else ""
        start = time.monotonic()
        done = kernel.execute(
            f"%dora_start{option} --wait --timeout {STOP_AFTER:g}", timeout=CELL_TIMEOUT
        )
        seconds = time.monotonic() - start
        kernel.execute("%dora_reset")
        summary = done.text.splitlines()
        panels = len(loaded.widget_ids())
        clean = panels == len(summary) > 0 and all(": finished, " in line for line in summary)
        return Run(
            label(engine), folder, 0 if clean else 1, seconds, done.text, _records(engine, folder)
        )

    return run


@pytest.mark.parametrize("name", IN_KERNEL)
def test_engines_agree_in_a_kernel(
    name: str, tmp_path: Path, kernel: Kernel, report: Callable[[str], None]
) -> None:
    compare_engines(name, tmp_path, kernel_runner(kernel), report)


def test_the_kernel_is_left_clean(kernel: Kernel) -> None:
    """After the runs above: no graph, no dora process, no thread of the engines."""
    found = kernel.execute(
        "import threading, psutil\nfrom dora_notebook import current\n"
        "print(len(current().graph), current().running,"
        " [p.name() for p in psutil.Process().children(recursive=True)],"
        " sorted(t.name for t in threading.enumerate() if t.name.startswith('dora')))"
    )
    assert found.text.strip() == "0 False [] []"
