"""The arguments of the graph magics, shared by the IPython magics and the CLI.

``%%dora_operator``, ``%%dora_node``, ``%%dora_dataflow`` and
``%dora_export`` declare their arguments here once. The magics build their
IPython parsers (and ``%magic?`` help) from these definitions, and
``dora-notebook export`` reads the magic lines of a notebook with the same
definitions and the same splitting as IPython, so a line means exactly the
same thing in both. This module imports neither IPython nor ipywidgets.

>>> args = parse("dora_operator", "sensor --inputs tick=dora/timer/millis/50 --outputs reading")
>>> args.node_id, args.inputs, args.outputs, args.queue_size, args.machine
('sensor', ['tick=dora/timer/millis/50'], ['reading'], None, None)
>>> parse("dora_node", "cam --queue-size 0")
Traceback (most recent call last):
...
dora_notebook.jupyter.arguments.ArgumentError: --queue-size must be at least 1, not 0
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from typing import Any

from ..core.graph import MAX_QUEUE_SIZE

__all__ = [
    "ARGUMENTS",
    "DATAFLOW",
    "DEFINITION",
    "EXPORT",
    "ArgumentError",
    "check",
    "param_value",
    "parse",
    "parser",
    "split",
]

#: One argument: the names and keyword arguments of ``add_argument``.
Argument = tuple[tuple[str, ...], dict[str, Any]]

#: ``%%dora_operator`` and ``%%dora_node``.
DEFINITION: list[Argument] = [
    (("node_id",), {"help": "the node's id, as in a dora descriptor"}),
    (
        ("--inputs",),
        {
            "nargs": "+",
            "action": "extend",
            "default": [],
            "metavar": "NAME=SOURCE",
            "help": "inputs: SOURCE is node/output or dora/timer/millis|secs|hz/N",
        },
    ),
    (
        ("--outputs",),
        {
            "nargs": "+",
            "action": "extend",
            "default": [],
            "metavar": "NAME",
            "help": "output ids this node sends on",
        },
    ),
    (
        ("--queue-size",),
        {
            "type": int,
            "metavar": "N",
            "help": "queue length of every input (default 10, dora's default)",
        },
    ),
    (
        ("--machine",),
        {"metavar": "NAME", "help": "the dora machine to place this node on (dora engine)"},
    ),
]

#: ``%%dora_dataflow`` (YAML body) and ``%dora_dataflow PATH``.
DATAFLOW: list[Argument] = [
    (
        ("path",),
        {"nargs": "?", "help": "a dora descriptor file (or give YAML as the cell body)"},
    ),
]

#: ``%dora_export DIR [--force]``.
EXPORT: list[Argument] = [
    (("directory",), {"help": "where to write dataflow.yml and the node files"}),
    (
        ("--force",),
        {
            "action": "store_true",
            "help": "replace files in DIR that dora-notebook did not write (or that changed since)",
        },
    ),
]

#: The arguments of each magic, by name.
ARGUMENTS: dict[str, list[Argument]] = {
    "dora_operator": DEFINITION,
    "dora_node": DEFINITION,
    "dora_dataflow": DATAFLOW,
    "dora_export": EXPORT,
}


class ArgumentError(ValueError):
    """A magic line that does not parse; the message is one line."""


#: Line breaks a token of the line can carry into argparse's message, as escapes.
_LINE_BREAKS = str.maketrans({"\r": "\\r", "\n": "\\n", "\v": "\\v", "\f": "\\f"})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the process
        """Raise the message as one line: argparse quotes a bad token as it is.

        >>> _Parser().error("unrecognized arguments: " + chr(13) + " " + chr(10))
        Traceback (most recent call last):
        ...
        dora_notebook.jupyter.arguments.ArgumentError: unrecognized arguments: \\r \\n
        """
        raise ArgumentError(message.translate(_LINE_BREAKS))


def split(line: str) -> list[str]:
    """Split a magic line as IPython does: shell-like, quotes kept, no comments.

    >>> split("a --inputs 'x=y'")
    ['a', '--inputs', "'x=y'"]
    """
    lexer = shlex.shlex(line, posix=False)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:  # unbalanced quotes
        raise ArgumentError(str(exc)) from None


def parser(name: str) -> argparse.ArgumentParser:
    """A plain argparse parser for magic ``name`` (errors raise :class:`ArgumentError`)."""
    if name not in ARGUMENTS:
        raise KeyError(f"no magic {name!r} (known: {', '.join(ARGUMENTS)})")
    result = _Parser(prog=f"%{name}", add_help=False)
    for names, options in ARGUMENTS[name]:
        result.add_argument(*names, **options)
    return result


def check(name: str, args: argparse.Namespace) -> argparse.Namespace:
    """The checks argparse cannot express; raise :class:`ArgumentError`, else return ``args``.

    Paths are taken as IPython's own magics take them: quotes stripped, ``~``
    expanded; an empty path is refused.

    >>> check("dora_export", parser("dora_export").parse_args(["'~/my dir'"])).directory
    ... # doctest: +ELLIPSIS
    '/.../my dir'
    """
    size = getattr(args, "queue_size", None) if ARGUMENTS.get(name) is DEFINITION else None
    if size is not None and size < 1:
        raise ArgumentError(f"--queue-size must be at least 1, not {size}")
    if size is not None and size > MAX_QUEUE_SIZE:
        raise ArgumentError(f"--queue-size must be at most {MAX_QUEUE_SIZE:,}, not {size}")
    for field in ("directory", "path"):
        value = getattr(args, field, None)
        if value is not None:
            setattr(args, field, path_argument(value, field.upper() if field == "path" else "DIR"))
    return args


def path_argument(text: str, what: str) -> str:
    """A path as typed on a magic line: surrounding quotes stripped, ``~`` expanded.

    >>> path_argument('"/tmp/my dir"', "DIR")
    '/tmp/my dir'
    >>> path_argument("''", "DIR")
    Traceback (most recent call last):
    dora_notebook.jupyter.arguments.ArgumentError: DIR must not be empty
    """
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if not text.strip():
        raise ArgumentError(f"{what} must not be empty")
    return os.path.expanduser(text)


def check_cell(kind: str, node_id: str, body: str) -> None:
    """Refuse a definition cell whose Python does not compile, in one line.

    >>> check_cell("operator", "a", "class Operator(:")
    Traceback (most recent call last):
    dora_notebook.jupyter.arguments.ArgumentError: node 'a': SyntaxError: invalid syntax (line 1)
    """
    try:
        compile(body, f"<dora {kind} {node_id}>", "exec")
    except SyntaxError as exc:
        raise ArgumentError(
            f"node {node_id!r}: {type(exc).__name__}: {exc.msg} (line {exc.lineno})"
        ) from None


def param_value(words: list[str]) -> Any:
    """The VALUE of ``%dora_param NODE KEY VALUE``: JSON, as ``dora param set`` takes it.

    The words after KEY are one JSON text; single quotes around all of it,
    as a shell needs them, may stay.

    >>> param_value(['{"mode":', '"fast",', '"n":', '[1,', '2]}'])
    {'mode': 'fast', 'n': [1, 2]}
    >>> param_value(["'[1,", "2]'"])
    [1, 2]
    >>> param_value(["fast"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    dora_notebook.jupyter.arguments.ArgumentError: VALUE is not JSON: fast (...)
    """
    text = " ".join(words)
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError:
        raise ArgumentError(
            f"VALUE is not JSON: {text} (dora param set takes JSON; a string goes in "
            f'double quotes: "{text}")'
        ) from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json takes NaN and Infinity; JSON does not


def parse(name: str, line: str) -> argparse.Namespace:
    """Parse the argument line of magic ``name`` (``dora_operator``...), checked."""
    return check(name, parser(name).parse_args(split(line)))
