"""Change a running node's inputs and outputs in place (hot redefinition).

Queues of inputs that keep their id survive with their messages; inputs that
disappear are unsubscribed; new ones are subscribed (a new timer starts
ticking). Called with the engine's lock held.
"""

from __future__ import annotations

from ..errors import GraphError
from .graph import REPLAY_PREFIX, NodeSpec
from .runner import Host, InputQueue, Runner, closed_marker

__all__ = ["rewire"]


def _routes_of(engine: Host, runner: Runner, source: str) -> list[tuple[Runner, InputQueue]] | None:
    """The subscriber list that feeds an input with this ``source``."""
    if source == "dora/logs" or source.startswith("dora/logs/"):
        return engine.log_routes(source)
    if source.startswith(REPLAY_PREFIX):
        try:
            return engine.replay_routes(source)
        except GraphError as exc:  # the input is closed from the start; the panel says why
            engine.emit(runner.id, "warning", str(exc))
            return None
    if source.startswith("dora/"):
        return engine.timer_routes(source)
    node, _, output = source.partition("/")
    upstream = engine.runners.get(node)
    return None if upstream is None else upstream.routes.get(output)


def rewire(engine: Host, runner: Runner, spec: NodeSpec) -> None:
    """Make ``runner`` (a live node) wired as ``spec`` says."""
    old = runner.spec.inputs
    for input_id, inp in old.items():
        new = spec.inputs.get(input_id)
        if new is not None and new.source == inp.source:
            continue
        routes = _routes_of(engine, runner, inp.source)
        queue = runner.queues[input_id]
        if routes is not None:
            routes[:] = [r for r in routes if r[1] is not queue]
        if new is None:
            runner.pending -= len(queue.items)
            if not queue.closed:
                runner.open_inputs -= 1
            del runner.queues[input_id]
    for input_id, inp in spec.inputs.items():
        queue = runner.queues.get(input_id)
        if queue is None:
            queue = runner.queues[input_id] = InputQueue(input_id, inp.source, inp.capacity)
            runner.open_inputs += 1
        queue.capacity = inp.capacity
        previous = old.get(input_id)
        if previous is not None and previous.source == inp.source:
            continue
        queue.source = inp.source
        queue.timer = inp.is_timer
        routes = _routes_of(engine, runner, inp.source)
        upstream = engine.runners.get(inp.source.partition("/")[0])
        if routes is None or (upstream is not None and upstream.finished):
            # Its source is gone or done: the input is closed from the start.
            runner.push(queue, closed_marker(engine))
        else:
            routes.append((runner, queue))
    runner.routes = {o: runner.routes.get(o, []) for o in spec.outputs}
    runner.spec = spec
