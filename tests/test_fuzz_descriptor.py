"""Fuzz the descriptor loader: whatever the YAML, only the package's own one-line
GraphError comes out, and never a hang."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_notebook import Dataflow
from dora_notebook.errors import GraphError

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "a.py",
            "src/out",
            "dora/timer/millis/0",
            "dora/timer/parsecs/3",
            "dora/timer/hz/5",
            "../x",
            "dynamic",
            "n1/out",
            "yes",
            "012",
        ]
    ),
)
KEYS = st.sampled_from(
    [
        "id",
        "path",
        "operator",
        "python",
        "inputs",
        "outputs",
        "source",
        "queue_size",
        "env",
        "args",
        "deploy",
        "machine",
        "nodes",
        "x",
        "operators",
        "custom",
        "build",
    ]
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), inner, max_size=5),
    ),
    max_leaves=25,
)
NODE = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["n1", "n2", "a/b", "..", "dora", ""]), SCALARS)},
    optional={
        "path": st.one_of(st.just("a.py"), SCALARS),
        "inputs": TREES,
        "outputs": TREES,
        "operator": TREES,
        "env": TREES,
        "args": TREES,
        "x": TREES,
    },
)
DESCRIPTORS = st.one_of(TREES, st.fixed_dictionaries({"nodes": st.lists(NODE, max_size=4)}))

FUZZ = settings(
    max_examples=300,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def check(flow: Dataflow, text: str, base: Path) -> None:
    try:
        flow.load_yaml(text, base_dir=base)
        flow.graph.validate()
    except GraphError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message


@FUZZ
@given(DESCRIPTORS)
def test_any_descriptor_structure_gives_a_clear_error_or_a_graph(tmp_path: Path, tree) -> None:
    (tmp_path / "a.py").write_text("")
    check(Dataflow(echo=False), yaml.safe_dump(tree), tmp_path)


@FUZZ
@given(st.text(max_size=200))
def test_any_text_gives_a_clear_error_or_a_graph(tmp_path: Path, text: str) -> None:
    check(Dataflow(echo=False), text + "\n", tmp_path)
