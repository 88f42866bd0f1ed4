"""NodeState: what a node reports, folded into a snapshot that stays bounded."""

from __future__ import annotations

import tracemalloc

from dora_notebook.core.observe import LOG_LIMIT, PREVIEW_LIMIT, REPORT_LIMIT, NodeState, Report


def _flood(state: NodeState, start: int, stop: int) -> None:
    for i in range(start, stop):
        text = f"{i:06d}" + "x" * 1000  # a new 1 kB string each: growth would show
        state.apply(Report("n", "message", {"i": i, "text": text}, 0.0))
        state.apply(Report("n", "warning", f"warning {text}", 0.0))
        state.apply(Report("n", "error", f"error {text}", 0.0))


def test_messages_warnings_and_errors_keep_the_newest_and_count_the_rest() -> None:
    state = NodeState("n", "node")
    total = 10 * REPORT_LIMIT
    tracemalloc.start()
    try:
        _flood(state, 0, REPORT_LIMIT)
        full, _ = tracemalloc.get_traced_memory()
        _flood(state, REPORT_LIMIT, total)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 9 x 3 000 more reports of 1 kB each (27 MB if kept) cost nothing once full.
    assert after - full < 200_000, after - full
    assert [m["i"] for m in state.messages] == list(range(total - REPORT_LIMIT, total))
    assert state.warnings[0].startswith(f"warning {total - REPORT_LIMIT:06d}")
    assert state.errors[-1].startswith(f"error {total - 1:06d}")
    assert state.error == state.errors[-1]
    assert len(state.warnings) == len(state.errors) == REPORT_LIMIT
    assert state.messages_dropped == state.warnings_dropped == state.errors_dropped
    assert state.messages_dropped == total - REPORT_LIMIT
    # Warnings and errors are log lines too; the log keeps its own count.
    assert len(state.logs) == LOG_LIMIT and state.logs_dropped == 2 * total - LOG_LIMIT


def test_a_new_run_starts_the_counts_anew() -> None:
    state = NodeState("n", "node")
    _flood(state, 0, REPORT_LIMIT + 5)
    state.attach(None)
    assert (state.messages, state.warnings, state.errors) == ([], [], [])
    assert state.messages_dropped == state.warnings_dropped == state.errors_dropped == 0


def _preview(state: NodeState, slot: str, value: object) -> None:
    state.apply(
        Report("n", "preview", {"slot": slot, "payload": {"type": "json", "data": value}}, 0)
    )


def test_previews_keep_the_most_recently_updated_slots_and_count_the_rest() -> None:
    state = NodeState("n", "node")
    for i in range(PREVIEW_LIMIT):
        _preview(state, f"id{i}", i)
    _preview(state, "id0", "again")  # updated: now the most recent
    _preview(state, "new", 0)
    assert "id0" in state.previews and "id1" not in state.previews  # the least recently updated
    assert list(state.previews)[-2:] == ["id0", "new"] and state.previews_dropped == 1
    for i in range(PREVIEW_LIMIT, 20_000):
        _preview(state, f"id{i}", i)
    assert list(state.previews) == [f"id{i}" for i in range(20_000 - PREVIEW_LIMIT, 20_000)]
    assert state.previews_dropped == 20_000 - PREVIEW_LIMIT + 1
    big = "x" * 10_000_000
    _preview(state, "big", big)
    assert state.previews["big"]["data"] is big  # the state keeps the whole payload
    state.attach(None)
    assert state.previews == {} and state.previews_dropped == 0
