"""Shared fixtures: every test fails if it leaves a thread or a child process behind, and a
test marked ``dora`` runs only with the dora CLI (skipped without it, failed under CI)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from .kernel import Kernel
from .needs import needs_dora

# Folders of node scripts, which create a Node() at import: not modules for
# pytest's doctest collection (one list here, not a conftest.py in each: two
# conftest.py files outside packages would clash by name).
collect_ignore = ["logging_dataflow", "observed_dataflow"]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("dora") is not None:
        needs_dora()


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail the test if it leaves threads or child processes running."""
    threads = _live_threads()
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    deadline = time.monotonic() + 3.0
    while True:
        leaked = [
            t
            for t in _live_threads() - threads
            if not t.name.startswith(("asyncio", "ThreadPoolExecutor"))
        ]
        orphans = [
            p
            for p in psutil.Process().children(recursive=True)
            if p.pid not in children and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]
        if not leaked and not orphans:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for proc in orphans:
        proc.kill()
    pytest.fail(
        f"test leaked threads {[t.name for t in leaked]} / processes {[p.pid for p in orphans]}"
    )


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    """A real ipykernel with the extension loaded, one per test module."""
    k = Kernel()
    try:
        k.execute("%load_ext dora_notebook")
        yield k
    finally:
        k.shutdown()


@pytest.fixture
def fresh_graph(kernel: Kernel) -> Iterator[None]:
    """The test starts with an empty graph and leaves no dora thread in the kernel.

    Kernel test modules use it for every test: ``pytestmark = usefixtures("fresh_graph")``.
    """
    kernel.execute("%dora_reset")
    yield
    kernel.execute("%dora_reset")
    threads = kernel.dora_threads()
    assert threads == "[]", f"dora threads left in the kernel: {threads}"
