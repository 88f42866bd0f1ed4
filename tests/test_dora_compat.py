"""`from dora import ...` inside node code means this package; elsewhere it is untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import dora  # the real dora-rs, a test dependency via the `dora` extra

from dora_notebook import Dataflow
from dora_notebook.api.dora import DoraStatus, Node


def test_node_code_gets_this_package_while_import_dora_elsewhere_is_real() -> None:
    seen: dict = {}
    flow = Dataflow(echo=False)
    flow.add_node(
        "n",
        textwrap.dedent("""
        import dora
        from dora import Node, DoraStatus
        import builtins
        builtins.SEEN_DORA = (dora.__name__, Node, DoraStatus)
    """),
    )
    import builtins

    flow.start()
    assert flow.wait(10)
    seen["name"], seen["node"], seen["status"] = builtins.SEEN_DORA  # type: ignore[attr-defined]
    del builtins.SEEN_DORA  # type: ignore[attr-defined]
    assert seen["name"] == "dora_notebook.api.dora"
    assert seen["node"] is Node and seen["status"] is DoraStatus
    assert sys.modules["dora"] is dora and dora.__name__ == "dora"
    assert "site-packages" in (dora.__file__ or "")
    assert dora.Node is not Node


def test_dora_rs_status_enum_is_accepted() -> None:
    class Operator:
        def on_event(self, event, send_output):
            return dora.DoraStatus.STOP  # dora-rs's own enum

    flow = Dataflow(echo=False)
    flow.add_operator("op", Operator, inputs={"t": "dora/timer/millis/10"})
    flow.start()
    assert flow.wait(5)
    assert flow.status("op").status == "finished"


def test_submodules_of_dora_give_a_clear_import_error() -> None:
    flow = Dataflow(echo=False)
    flow.add_node("n", "import dora.builder\n")
    flow.start()
    assert flow.wait(5)
    error = flow.status("n").error
    assert "ImportError: 'dora.builder' is not available on the embedded engine" in error


def test_works_without_dora_rs_installed() -> None:
    # A meta-path finder that hides dora-rs stands in for an environment without it.
    script = textwrap.dedent("""
        import sys, importlib.abc

        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "dora" or name.startswith("dora."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Hide())
        from dora_notebook import Dataflow
        flow = Dataflow()
        flow.add_node("src", "from dora import Node\\nimport pyarrow as pa\\n"
                             "Node().send_output('o', pa.array([7]))", outputs=["o"])
        flow.add_operator("op", "from dora import DoraStatus\\nclass Operator:\\n"
                          "    def on_event(self, e, s):\\n"
                          "        if e['type'] == 'INPUT': print('value', e['value'][0])\\n"
                          "        return DoraStatus.CONTINUE\\n", inputs={"x": "src/o"})
        flow.start()
        assert flow.wait(10)
        try:
            import dora
        except ModuleNotFoundError:
            print("real dora hidden")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "stdout op: value 7" in result.stdout
    assert result.stdout.rstrip().endswith("real dora hidden")


def test_each_node_imports_the_helper_module_beside_it(tmp_path) -> None:
    """Two dataflows from two folders, each with its own ``helpers.py``: no mix-up.

    Under dora-rs each node is a process whose folder comes first on the
    module path; in one kernel, the helper must still be the one beside
    the node file, not the first module of that name loaded.
    """
    node = textwrap.dedent(
        """
        from dora import Node
        import helpers

        Node().context.preview(helpers.WHO)
        """
    )
    flows = []
    for who in ("first", "second"):
        folder = tmp_path / who
        folder.mkdir()
        (folder / "helpers.py").write_text(f"WHO = {who!r}\n")
        (folder / "show.py").write_text(node)
        (folder / "dataflow.yml").write_text("nodes:\n  - id: show\n    path: show.py\n")
        flows.append(Dataflow.from_yaml(folder / "dataflow.yml", echo=False))
    for flow in flows:
        flow.run(timeout=10)
    shown = [flow.node("show").previews for flow in flows]
    assert shown == [{"default": {"type": "text", "data": who}} for who in ("first", "second")]


def test_helpers_load_once_per_kernel_until_reset(tmp_path) -> None:
    """A helper edited between runs is seen after ``%dora_reset``, not before."""
    from dora_notebook.core import loader as _loader

    (tmp_path / "helpers.py").write_text("WHO = 'old'\n")
    (tmp_path / "show.py").write_text(
        "from dora import Node\nimport helpers\n\nNode().context.preview(helpers.WHO)\n"
    )
    (tmp_path / "dataflow.yml").write_text("nodes:\n  - id: show\n    path: show.py\n")

    def shown() -> str:
        flow = Dataflow.from_yaml(tmp_path / "dataflow.yml", echo=False)
        flow.run(timeout=10)
        return flow.node("show").previews["default"]["data"]

    assert shown() == "old"
    (tmp_path / "helpers.py").write_text("WHO = 'edited'\n")  # another size: no stale .pyc
    assert shown() == "old"  # loaded once, as one process would
    _loader.forget_helpers()  # what %dora_reset does
    assert shown() == "edited"
    _loader.forget_helpers()
    assert "helpers" not in sys.modules
