"""The ``dora-notebook`` command.

    dora-notebook run DATAFLOW.yml [--stop-after SECONDS] [--build]
    dora-notebook export NOTEBOOK.ipynb OUTDIR
    dora-notebook expand DATAFLOW.yml
    dora-notebook validate DATAFLOW.yml
    dora-notebook --version

``run`` executes a dora-rs descriptor on the embedded engine, in the
descriptor's folder, printing each node's output prefixed with its id. It
exits 0 when every node finished cleanly, 1 with a one-line reason when a
node failed or the descriptor is invalid, and 130 after Ctrl-C. After its
STOP (``--stop-after``, Ctrl-C) the nodes get :data:`STOP_GRACE` seconds to
end by themselves, as under ``dora run``.

``export`` reads the graph a notebook's magics define (see
:mod:`dora_notebook.jupyter.notebook`) and writes it to OUTDIR as ``%dora_export``
does (see :mod:`dora_notebook.dora_rs.export`): ``dora run OUTDIR/dataflow.yml``
runs it. It exits 0, or 1 with a one-line reason.

``expand`` prints the descriptor with its modules expanded, as ``dora
expand`` prints it; ``validate`` checks wiring, fields and port types and
prints what ``dora validate`` prints (see :mod:`dora_notebook.core.modules`,
:mod:`dora_notebook.core.types`). ``run --build`` first runs the nodes'
``build:`` commands as ``dora build`` does; without it they are listed, not run.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .dataflow import Dataflow
from .errors import DataflowError, GraphError, StopInterrupted

__all__ = ["STOP_GRACE", "main"]

#: Seconds ``run`` gives the nodes to end after its STOP (``--stop-after``, Ctrl-C) before
#: it interrupts them, as ``dora run`` does: dora-rs 1.1's daemon sends SIGTERM 10 s after
#: the STOP (measured: a node ignoring STOP got it 10.00 s later). A second Ctrl-C cuts
#: the wait short.
STOP_GRACE = 10.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dora-notebook",
        description="Run dora-rs dataflows on dora-notebook's embedded engine, and export "
        "notebooks to dora-rs dataflows.",
    )
    parser.add_argument("--version", action="version", version=f"dora-notebook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a dora-rs dataflow descriptor on the embedded engine",
        description="Run a dora-rs dataflow descriptor (Python custom nodes and operators) "
        "on the embedded engine, in the descriptor's folder.",
    )
    run.add_argument("dataflow", metavar="DATAFLOW.yml", help="the dora-rs descriptor")
    run.add_argument(
        "--stop-after",
        type=_seconds,
        metavar="SECONDS",
        help="stop the dataflow after this many seconds",
    )
    run.add_argument(
        "--build", action="store_true", help="run the nodes' build: commands first, as dora build"
    )
    expand = commands.add_parser(
        "expand",
        help="print the descriptor with its modules expanded, as `dora expand`",
        description="Print the flat descriptor: module nodes replaced by their nodes.",
    )
    expand.add_argument("dataflow", metavar="DATAFLOW.yml", help="the dora-rs descriptor")
    validate = commands.add_parser(
        "validate",
        help="check a descriptor's wiring, fields and port types, as `dora validate`",
        description="Check wiring, fields and input_types/output_types; exit 1 when invalid.",
    )
    validate.add_argument("dataflow", metavar="DATAFLOW.yml", help="the dora-rs descriptor")
    validate.add_argument(
        "--strict-types", action="store_true", help="treat type warnings as errors"
    )
    export = commands.add_parser(
        "export",
        help="export the dataflow a notebook defines to a folder that `dora run` runs",
        description="Write OUTDIR/dataflow.yml and one Python file per node from the "
        "%%dora_operator, %%dora_node and %%dora_dataflow cells of a notebook, in order.",
    )
    export.add_argument("notebook", metavar="NOTEBOOK.ipynb", help="the notebook")
    export.add_argument("outdir", metavar="OUTDIR", help="the folder to write")
    export.add_argument(
        "--force",
        action="store_true",
        help="replace files in OUTDIR that dora-notebook did not write (or that changed since)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text.rstrip("s"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < math.inf:  # nan and inf too
        raise argparse.ArgumentTypeError(f"--stop-after must be a positive number, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(Path(args.dataflow), args.stop_after, args.build)
    if args.command == "expand":
        return _expand(Path(args.dataflow))
    if args.command == "validate":
        return _validate(Path(args.dataflow), args.strict_types)
    if args.command == "export":
        return _export(Path(args.notebook), Path(args.outdir), args.force)
    _parser().print_help()
    return 2


def _export(notebook: Path, outdir: Path, force: bool) -> int:
    from .dora_rs.export import export, summary
    from .jupyter.notebook import dataflow_from_notebook

    try:
        flow = dataflow_from_notebook(notebook)
        written = export(
            flow.graph,
            outdir,
            top=flow.descriptor_extra(),
            base_dir=notebook.resolve().parent,
            force=force,
        )
    except (DataflowError, OSError) as exc:
        print(f"dora-notebook: {exc}", file=sys.stderr)
        return 1
    print(summary(written, flow.graph))
    return 0


def _read(path: Path) -> dict[str, Any]:
    """The descriptor at ``path`` with its modules expanded (a GraphError if it is bad)."""
    from .core.graph import DESCRIPTOR_KEYS, load_yaml_text
    from .core.modules import expand

    if not path.is_file():
        raise GraphError(f"descriptor file {str(path)!r} does not exist")
    descriptor = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("nodes"), list):
        raise GraphError(f"{path}: a dora descriptor is a mapping with a 'nodes' list")
    unknown = set(descriptor) - DESCRIPTOR_KEYS
    if unknown:  # a module's own file (module:, inputs:...) is no dataflow
        raise GraphError(f"{path}: unknown top-level key(s) {sorted(map(str, unknown))}")
    return expand(descriptor, path.resolve().parent)


def _expand(path: Path) -> int:
    from .core.dora_yaml import dump
    from .core.graph import check_for_dora

    try:
        descriptor = _read(path)
        check_for_dora(descriptor)
        text = dump(descriptor)
    except (GraphError, OSError, ValueError) as exc:  # ValueError: a bad timer
        print(f"dora-notebook: {exc}", file=sys.stderr)
        return 1
    print(text, end="")
    return 0


def _validate(path: Path, strict: bool) -> int:
    from .core.graph import check_wiring, specs_from_descriptor
    from .core.types import check, load_user_types

    print(f"Validating {path}...")
    try:
        descriptor = _read(path)
        try:
            user_types = load_user_types(path.parent / "types")
        except ValueError as exc:
            raise GraphError(f"failed to load user types: {exc}") from None
        if user_types:
            print(f"Loaded {len(user_types)} user-defined type(s) from types/")
        report = check(descriptor, strict or bool(descriptor.get("strict_types")), user_types)
        # As dora validate: any node dora can run, its files not yet built;
        # the embedded engine's own limits are checked when a graph starts.
        specs_from_descriptor(descriptor, path.resolve().parent, types=False, runnable=False)
        try:
            check_wiring(descriptor)
        except GraphError as exc:
            raise GraphError(f"wiring check failed: {exc}") from None
    except (GraphError, OSError, UnicodeDecodeError) as exc:
        print(f"dora-notebook: {exc}", file=sys.stderr)
        return 1
    print("Input/output wiring OK.")
    print("Descriptor config OK.")
    for line in report.inferences:
        print(f"  {line}")
    if not report.warnings:
        print("All type annotations OK.")
        return 0
    print("Type warnings:")
    for line in report.warnings:
        print(f"  - {line}")
    print(f"{len(report.warnings)} type warning(s) found.")
    if strict or descriptor.get("strict_types"):
        print(
            f"dora-notebook: {len(report.warnings)} type warning(s) found (--strict mode)",
            file=sys.stderr,
        )
        return 1
    return 0


def _run(path: Path, stop_after: float | None, build: bool = False) -> int:
    # --stop-after bounds the whole run, reading and starting included.
    deadline = None if stop_after is None else time.monotonic() + stop_after
    try:
        flow = Dataflow.from_yaml(path)
    except DataflowError as exc:
        print(f"dora-notebook: {exc}", file=sys.stderr)
        return 1
    from .core.build import not_built_note

    try:
        if build:
            flow.build()
        elif note := not_built_note(flow.graph, "--build"):
            print(f"dora-notebook: {note}", file=sys.stderr)
    except DataflowError as exc:
        print(f"dora-notebook: {exc}", file=sys.stderr)
        return 1
    # Nodes see the descriptor's folder as their working directory, as under dora.
    os.chdir(path.resolve().parent)
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        try:
            flow.start()
        except DataflowError as exc:
            print(f"dora-notebook: {exc}", file=sys.stderr)
            return 1
        # Poll in short waits so that Ctrl-C (handled on this thread) is seen.
        while not flow.wait(0.05):
            if interrupted.is_set() or (deadline is not None and time.monotonic() >= deadline):
                break
        # Dataflow.stop interrupts what still runs at half its timeout.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            stuck = flow.stop(2 * STOP_GRACE)
        except StopInterrupted as exc:
            stuck = exc.stuck
            interrupted.set()
    finally:
        signal.signal(signal.SIGINT, previous)
    failed = {k: v for k, v in flow.status().items() if v.status == "failed"}  # type: ignore[union-attr]
    if stuck:
        print(f"dora-notebook: node(s) did not stop: {', '.join(stuck)}", file=sys.stderr)
    if failed:
        first = next(iter(failed.values()))
        reason = (first.error or "").strip().splitlines()[-1:] or ["failed"]
        print(f"dora-notebook: node {first.node_id!r} failed: {reason[0]}", file=sys.stderr)
        return 1
    if interrupted.is_set():
        print("dora-notebook: interrupted; dataflow stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
