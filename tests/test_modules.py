"""module: composition, fields, build: and what `dora expand` / `dora validate` print.

The CLI comparisons run the real dora-rs 1.1 CLI on the same files and
compare stdout byte for byte; when dora refuses a file, only the exit code
is compared (dora prints an eyre report with a backtrace, we print one line).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dora_notebook import Dataflow
from dora_notebook.core.graph import check_wiring, load_yaml_text, specs_from_descriptor
from dora_notebook.core.modules import expand
from dora_notebook.core.types import check, compatible, load_user_types
from dora_notebook.errors import GraphError

from .needs import needs_dora

CLI = [sys.executable, "-m", "dora_notebook.cli"]

MODULE = """\
module:
  name: transform
  inputs: [raw]
  inputs_optional: [config]
  outputs: [filtered]
build: echo module-build
nodes:
  - id: doubler
    path: doubler.py
    args: --gain $PARAM_GAIN
    inputs:
      data: _mod/raw
      config: _mod/config
    outputs: [doubled]
  - id: filter
    path: filter.py
    inputs:
      data: doubler/doubled
    outputs: [filtered]
"""

OUTER = """\
module:
  name: outer
  inputs: [data]
  outputs: [filtered]
nodes:
  - id: inner
    module: transform.yml
    inputs:
      raw: _mod/data
    params: {gain: 3}
"""

DATAFLOW = """\
nodes:
  - id: sender
    path: sender.py
    outputs: [value]
    inputs:
      tick: dora/timer/hz/0.5
  - id: pipe
    module: modules/outer.yml
    env: {MODE: fast}
    inputs:
      data: sender/value
  - id: receiver
    path: receiver.py
    inputs:
      filtered: pipe/filtered
"""


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "dataflow.yml"


def nested(tmp_path: Path) -> Path:
    return tree(
        tmp_path,
        {
            "dataflow.yml": DATAFLOW,
            "modules/outer.yml": OUTER,
            "modules/transform.yml": MODULE,
            "modules/doubler.py": "",
            "modules/filter.py": "",
            "sender.py": "",
            "receiver.py": "",
        },
    )


def test_nested_modules_expand_as_dora_expands_them(tmp_path: Path) -> None:
    path = nested(tmp_path)
    flat = expand(load_yaml_text(path.read_text()), tmp_path)
    nodes = {n["id"]: n for n in flat["nodes"]}
    assert list(nodes) == ["sender", "pipe.inner.doubler", "pipe.inner.filter", "receiver"]
    doubler = nodes["pipe.inner.doubler"]
    assert doubler["inputs"] == {"data": "sender/value"}  # optional _mod/config dropped
    assert doubler["path"] == "modules/doubler.py"
    assert doubler["args"] == "--gain 3"
    assert doubler["env"] == {"MODE": "fast", "PARAM_GAIN": "3"}
    assert doubler["build"] == "echo module-build"
    assert nodes["pipe.inner.filter"]["inputs"] == {"data": "pipe.inner.doubler/doubled"}
    assert nodes["receiver"]["inputs"] == {"filtered": "pipe.inner.filter/filtered"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"m.yml": MODULE.replace("outputs: [filtered]\nbuild", "outputs: [nope]\nbuild")},
            "module 'transform' declares output 'nope' but no inner node produces it",
        ),
        ({"m.yml": MODULE.replace("  name: transform\n", "  name: t\n  colour: red\n")}, "colour"),
        ({"m.yml": MODULE.replace("_mod/raw", "_mod/other")}, "'_mod/other' is not wired"),
    ],
)
def test_bad_modules_are_refused_in_one_line(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    text = "nodes:\n  - id: s\n    path: s.py\n    outputs: [v]\n  - id: m\n    module: m.yml\n"
    text += "    inputs: {raw: s/v}\n"
    with pytest.raises(GraphError, match=message) as info:
        expand(load_yaml_text(text), tree(tmp_path, files).parent)
    assert "\n" not in str(info.value) and "'m'" in str(info.value)


def test_a_module_node_with_a_path_is_refused(tmp_path: Path) -> None:
    tree(tmp_path, {"m.yml": MODULE})
    text = "nodes:\n  - id: m\n    module: m.yml\n    path: x.py\n    inputs: {raw: a/b}\n"
    with pytest.raises(GraphError, match="module node 'm': path cannot go with 'module'"):
        expand(load_yaml_text(text), tmp_path)


def test_types_compatibility_and_mismatch_refused_before_start(tmp_path: Path) -> None:
    assert compatible("std/core/v1/UInt8", "std/core/v1/UInt64")
    assert compatible("std/media/v1/Image", "std/core/v1/Bytes")
    assert not compatible("std/core/v1/Int64", "std/core/v1/Int32")
    assert compatible("a", "c", [("a", "b"), ("b", "c")])
    text = textwrap.dedent(
        """\
        nodes:
          - id: src
            path: a.py
            outputs: [v]
            output_types: {v: std/core/v1/Int64}
          - id: dst
            path: a.py
            inputs: {v: src/v}
            input_types: {v: std/core/v1/Int32}
        """
    )
    (tmp_path / "a.py").write_text("")
    report = check(load_yaml_text(text))
    assert report.mismatches == report.warnings and len(report.mismatches) == 1
    with pytest.raises(GraphError) as info:
        specs_from_descriptor(load_yaml_text(text), tmp_path)
    assert str(info.value) == (
        'descriptor: node "dst": type mismatch on input "v": upstream src/v declares '
        '"std/core/v1/Int64", but expected "std/core/v1/Int32"'
    )


USER_TYPES = """\
types:
  Reading:
    arrow: Struct
    description: one sensor reading
  Level:
    arrow: Float32
"""
USER_TYPED = """\
nodes:
  - id: a
    path: a.py
    inputs: {tick: dora/timer/millis/10}
    outputs: [x, y, z]
    output_types:
      x: acme/sensors/v1/Reading
      y: acme/sensors/v1/Readng
      z: acme/sensors/v1/Level
  - id: b
    path: a.py
    inputs: {x: a/x, y: a/y, z: a/z}
    input_types: {z: acme/sensors/v1/Reading}
"""


def test_a_types_folder_defines_types_as_dora_reads_it(tmp_path: Path) -> None:
    path = tree(
        tmp_path,
        {
            "dataflow.yml": USER_TYPED,
            "a.py": "",
            "types/acme/sensors/v1.yml": USER_TYPES,
            "types/top.yml": "types:\n  Flag:\n    arrow: Boolean\n",
            "types/ignored.yaml": "types:\n  Not:\n    arrow: Int8\n",
        },
    )
    urns = load_user_types(tmp_path / "types")
    assert urns == {"acme/sensors/v1/Reading", "acme/sensors/v1/Level", "top/Flag"}
    report = check(load_yaml_text(path.read_text()), user_types=urns)
    assert report.warnings == [
        'node "a": unknown type "acme/sensors/v1/Readng" on output "y" '
        '(did you mean "acme/sensors/v1/Reading"?)',
        'node "b": type mismatch on input "z": upstream a/z declares '
        '"acme/sensors/v1/Level", but expected "acme/sensors/v1/Reading"',
    ]
    # Without the folder the same URNs are only unknown, never a mismatch.
    assert check(load_yaml_text(path.read_text())).mismatches == []
    # Loading the dataflow for a run refuses the mismatch between user types.
    with pytest.raises(GraphError, match='type mismatch on input "z"'):
        Dataflow().load_yaml(path)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"std/core/v2.yml": "types:\n  X:\n    arrow: Int8\n"}, 'cannot use the "std/" prefix'),
        ({"bad.yml": "types: [1"}, "bad.yml"),
        ({"bad.yml": "types:\n  A:\n    arow: Struct\n"}, "types.A: missing field `arrow`"),
        ({"bad.yml": "nottypes: 1\n"}, "needs a `types` mapping"),
    ],
)
def test_a_bad_types_folder_is_refused_naming_the_file(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    tree(tmp_path, {f"types/{name}": text for name, text in files.items()})
    with pytest.raises(ValueError, match=message):
        load_user_types(tmp_path / "types")
    path = tree(tmp_path, {"dataflow.yml": "nodes:\n  - id: a\n    path: a.py\n", "a.py": ""})
    with pytest.raises(GraphError, match="failed to load user types"):
        Dataflow().load_yaml(path)


NATIVE = """\
nodes:
  - id: rust-node
    build: cargo build -p rust-dataflow-example-node
    path: ../../target/debug/rust-dataflow-example-node
    inputs: {tick: dora/timer/millis/10}
    outputs: [random]
  - id: runtime
    operators:
      - id: first
        python: op.py
        inputs: {random: rust-node/random}
        outputs: [o]
      - id: second
        shared-library: ../../target/debug/op_native
        inputs: {o: runtime/first/o}
        outputs: [p]
  - id: c-sink
    path: build/c_sink
    inputs: {p: runtime/second/p, random: rust-node/random}
  - id: viewer
    path: dynamic
    inputs: {o: runtime/first/o}
"""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere/out", "source node `nowhere` mapped to input `c-sink/bad` does not exist"),
        ("rust-node/nope", "output `rust-node/nope` mapped to input `c-sink/bad` does not exist"),
        ("runtime/o", "runtime node outputs must include the operator id"),
        ("runtime/third/o", "source operator `runtime/third` used for input `c-sink/bad`"),
        ("runtime/first/q", "output `runtime/first/q` mapped to input `c-sink/bad`"),
    ],
)
def test_wiring_of_any_node_is_checked_with_doras_words(source: str, message: str) -> None:
    descriptor = load_yaml_text(NATIVE)
    check_wiring(descriptor)  # binaries, native and several operators, dynamic nodes
    descriptor["nodes"][2]["inputs"]["bad"] = source
    with pytest.raises(GraphError, match=message):
        check_wiring(descriptor)


def test_the_embedded_engine_still_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    path = tree(tmp_path, {"dataflow.yml": NATIVE, "op.py": ""})
    with pytest.raises(GraphError, match=r"'runtime': 'operators' .* is not supported"):
        Dataflow().load_yaml(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("restart_policy", "on-failure"),
        ("cpu_affinity", "[0]"),
        ("git", "https://example.com/x.git"),
        ("health_check_timeout", "5"),
        ("startup_timeout", "5"),
    ],
)
def test_a_field_the_embedded_engine_cannot_honour_is_refused_before_start(
    tmp_path: Path, field: str, value: str
) -> None:
    (tmp_path / "a.py").write_text("print('ran')\n")
    path = tree(
        tmp_path, {"dataflow.yml": f"nodes:\n  - id: a\n    path: a.py\n    {field}: {value}\n"}
    )
    flow = Dataflow.from_yaml(path)
    with pytest.raises(GraphError) as info:
        flow.start()
    assert str(info.value).startswith(f"node 'a': {field}: ")
    assert "--engine dora" in str(info.value) and "\n" not in str(info.value)
    assert flow.engine is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("input_timeout: 2.5", "node 'a': inputs.t: input_timeout: "),
        ("queue_policy: backpressure", "node 'a': inputs.t: queue_policy: backpressure: "),
    ],
)
def test_input_fields_for_dora_only_are_kept_for_it_and_refused_here(
    tmp_path: Path, options: str, message: str
) -> None:
    text = (
        "nodes:\n  - id: a\n    path: a.py\n    inputs:\n"
        f"      t: {{source: dora/timer/millis/10, {options}}}\n"
    )
    path = tree(tmp_path, {"dataflow.yml": text, "a.py": ""})
    flow = Dataflow.from_yaml(path)
    key, _, value = options.partition(": ")
    # Kept, so that the dora engine and an export hand them to dora.
    assert flow.graph["a"].inputs["t"].to_yaml()[key] == yaml_scalar(value)
    with pytest.raises(GraphError) as info:
        flow.start()
    assert str(info.value).startswith(message) and "--engine dora" in str(info.value)
    drop_oldest = text.replace(options, "queue_policy: drop_oldest")
    Dataflow.from_yaml(tree(tmp_path, {"dataflow.yml": drop_oldest})).graph.validate()


def yaml_scalar(text: str) -> object:
    return load_yaml_text(f"v: {text}")["v"]


PROGRAMS = """\
nodes:
  - id: counter
    path: ./counter
    inputs: {tick: dora/timer/millis/50}
    outputs: [count]
  - id: built
    build: cargo build -p built
    path: target/debug/built
    inputs: {count: counter/count}
  - id: sink
    path: sink.py
    inputs: {count: counter/count}
"""


def test_a_program_node_loads_and_the_embedded_engine_refuses_it_at_start(tmp_path: Path) -> None:
    path = tree(tmp_path, {"dataflow.yml": PROGRAMS, "counter": "#!/bin/sh\n", "sink.py": ""})
    flow = Dataflow.from_yaml(path)
    assert flow.graph["counter"].script == str(tmp_path / "counter")
    # Not built yet: its build: makes it; dora would run it.
    assert flow.graph["built"].script == str(tmp_path / "target/debug/built")
    with pytest.raises(GraphError) as info:
        flow.start()
    assert str(info.value) == (
        f"node 'counter': path: {str(tmp_path / 'counter')!r} is a program, not a Python "
        "script; the embedded engine runs Python nodes only (use %dora_start --engine dora)"
    )
    flow.remove("counter")
    flow.add_node("counter", "pass", inputs={"tick": "dora/timer/millis/50"}, outputs=["count"])
    with pytest.raises(GraphError, match=r"'built': path: .* does not exist yet: run its build:"):
        flow.start()
    no_build = PROGRAMS.replace("    build: cargo build -p built\n", "")
    with pytest.raises(GraphError, match="'built': path: file 'target/debug/built' does not exist"):
        Dataflow.from_yaml(tree(tmp_path, {"dataflow.yml": no_build}))


def test_path_sha256_is_checked_against_the_node_file(tmp_path: Path) -> None:
    code = "print('ran')\n"
    digest = hashlib.sha256(code.encode()).hexdigest()
    node = "nodes:\n  - id: a\n    path: a.py\n    path_sha256: {}\n"
    path = tree(tmp_path, {"dataflow.yml": node.format(digest), "a.py": code})
    flow = Dataflow.from_yaml(path, echo=False)
    flow.start()
    assert flow.wait(10)
    assert "ran" in flow.node("a").log_text()
    path.write_text(node.format("f" * 64))
    with pytest.raises(GraphError) as info:
        Dataflow.from_yaml(path).start()
    assert str(info.value) == (
        f"node 'a': path_sha256: {tmp_path / 'a.py'} has SHA-256 {digest}, not {'f' * 64}"
    )


def test_global_env_reaches_every_node(tmp_path: Path) -> None:
    code = "import os\nfrom dora import Node\nprint(os.environ['G'], os.environ['O'])\n"
    path = tree(
        tmp_path,
        {
            "a.py": code,
            "dataflow.yml": "env: {G: g, O: global}\nnodes:\n  - id: a\n    path: a.py\n"
            "    env: {O: own}\n",
        },
    )
    result = subprocess.run(
        [*CLI, "run", str(path)], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert result.returncode == 0, result.stderr
    assert "g own" in result.stdout


def test_build_runs_only_with_build_and_start_lists_it(tmp_path: Path) -> None:
    path = tree(
        tmp_path,
        {
            "a.py": "from dora import Node\nprint('node ran')\n",
            "dataflow.yml": "nodes:\n  - id: a\n    path: a.py\n    env: {WHO: a}\n"
            "    build: |\n      touch marker\n"
            "      python3 -c \"import os; print(os.environ['WHO'])\"\n",
        },
    )
    plain = subprocess.run([*CLI, "run", str(path)], capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert not (tmp_path / "marker").exists()
    assert "build: commands not run (run them with --build): a: touch marker && python3" in (
        plain.stderr
    )
    built = subprocess.run(
        [*CLI, "run", str(path), "--build"], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "marker").exists()  # ran in the descriptor's folder
    assert "a: stdout   a" in built.stdout and "node ran" in built.stdout


def test_a_failing_build_stops_the_run_in_one_line(tmp_path: Path) -> None:
    path = tree(
        tmp_path,
        {
            "a.py": "",
            "dataflow.yml": "nodes:\n  - id: a\n    path: a.py\n"
            "    build: python3 -c 'raise SystemExit(3)'\n",
        },
    )
    result = subprocess.run([*CLI, "run", str(path), "--build"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == (
        "dora-notebook: node 'a': build command \"python3 -c 'raise SystemExit(3)'\" exited "
        "with status 3\n"
    )


# -- the same files through the real dora CLI ----------------------------------

TYPED = """\
nodes:
  - id: src
    path: a.py
    inputs: {tick: dora/timer/millis/100}
    outputs: [value, other, img]
    output_types:
      value: std/core/v1/Float32
      other: std/core/v1/Int64
      img: std/media/v1/Image[encoding=jpeg]
      ghost: std/core/v1/Strin
  - id: dst
    path: a.py
    inputs: {v: src/value, o: src/other, i: src/img, t: dora/timer/hz/2}
    input_types:
      v: std/core/v1/Float64
      o: std/core/v1/Int32
      i: std/media/v1/Image[encoding=png]
      t: std/core/v1/String
  - id: inf
    path: a.py
    inputs: {v: src/value}
"""

FIELDS = """\
env: {GLOBAL: 1}
strict_types: false
nodes:
  - id: a
    name: "yes"
    description: "multi\\nline"
    path: a.py
    args: --x "1 2"
    env: {S: "true", N: 012, F: 1.5, B: yes, E: 1e20, Q: "0o17", T: "tab\\there", Z: 3.0e-7}
    outputs: [z, b]
    inputs:
      tick: {source: dora/timer/millis/10, queue_size: 3}
      t2: dora/timer/hz/0.5
      t3: dora/timer/hz/7
    build: |
      echo one
      echo two
    restart_policy: on-failure
    max_restarts: 3
    restart_delay: 0.5
    send_stdout_as: z
    max_log_size: 10MB
    health_check_timeout: 10
    cpu_affinity: [0, 1]
    deploy: {machine: m1}
    output_types: {z: std/core/v1/Bytes}
  - id: op
    operator:
      python: a.py
      inputs: {x: a/z}
      outputs: [o]
      build: echo hi
"""


def dora_and_ours(
    dora: str, command: str, path: Path
) -> tuple[subprocess.CompletedProcess[str], ...]:
    theirs = subprocess.run(
        [dora, command, path.name], capture_output=True, text=True, timeout=60, cwd=path.parent
    )
    ours = subprocess.run(
        [*CLI, command, path.name], capture_output=True, text=True, timeout=60, cwd=path.parent
    )
    return theirs, ours


@pytest.mark.dora
@pytest.mark.parametrize("command", ["expand", "validate"])
@pytest.mark.parametrize(
    "name",
    [
        "nested",
        "typed",
        "fields",
        "bad_timer",
        "native",
        "native_miswired",
        "user_types",
        "user_types_std",
    ],
)
def test_expand_and_validate_print_what_dora_prints(
    tmp_path: Path, command: str, name: str
) -> None:
    dora_bin = needs_dora()
    if name == "nested":
        path = nested(tmp_path)
    elif name.startswith("native"):
        extra = "  - id: extra\n    path: x\n    inputs: {y: runtime/first/q}\n"
        path = tree(tmp_path, {"dataflow.yml": NATIVE + (extra if "mis" in name else "")})
    elif name.startswith("user_types"):
        folder = "types/std/x" if name.endswith("std") else "types/acme/sensors"
        files = {"dataflow.yml": USER_TYPED, "a.py": "", f"{folder}/v1.yml": USER_TYPES}
        path = tree(tmp_path, files)
    else:
        text = {"typed": TYPED, "fields": FIELDS}.get(name)
        if text is None:
            text = "nodes:\n  - id: a\n    path: a.py\n    inputs: {t: dora/timer/millis/0.5}\n"
        path = tree(tmp_path, {"dataflow.yml": text, "a.py": ""})
    theirs, ours = dora_and_ours(dora_bin, command, path)
    assert (theirs.returncode == 0) == (ours.returncode == 0), (theirs.stderr, ours.stderr)
    if theirs.returncode == 0:
        assert ours.stdout == theirs.stdout
    else:
        assert len(ours.stderr.splitlines()) == 1 and "Traceback" not in ours.stderr
