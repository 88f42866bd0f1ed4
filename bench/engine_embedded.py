"""Run a benchmark dataflow on dora-notebook's embedded engine, in this process."""

from __future__ import annotations

from pipelines import Stage

from dora_notebook import Dataflow

__all__ = ["run"]


def build(stages: list[Stage]) -> Dataflow:
    """A dataflow holding ``stages``, their code given as source text."""
    flow = Dataflow(echo=False)
    for stage in stages:
        add = flow.add_operator if stage.kind == "operator" else flow.add_node
        add(
            stage.id,
            stage.code,
            inputs=stage.inputs,
            outputs=stage.outputs,
            queue_size=stage.queue_size,
        )
    return flow


def run(stages: list[Stage], timeout_s: float) -> None:
    """Run ``stages`` to the end, at most ``timeout_s`` seconds; raise if a node failed."""
    flow = build(stages)
    flow.start()
    finished = flow.wait(timeout_s)
    stuck = flow.stop()
    if not finished:
        raise RuntimeError(f"did not finish within {timeout_s:.0f} s (stuck: {stuck})")
    errors = [f"{status.id}: {status.error}" for status in flow.status().values() if status.error]
    if errors:
        raise RuntimeError("; ".join(errors))
