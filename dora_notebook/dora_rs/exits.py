"""How a node's process ended under dora-rs, told the way a panel should say it.

dora-rs 1.1 keeps the cause out of the bridge's events (``NODE_FAILED``
names the node only): its daemon logs it (``Signal(9)``, ``ExitCode(3)``),
and a Python traceback is in the node's own ``dora logs``.
"""

from __future__ import annotations

import re
import signal

__all__ = [
    "UNKNOWN_END",
    "Exit",
    "describe_exit",
    "exits_in_log",
    "exits_in_order",
    "traceback_in_log",
]

#: The line dora-rs 1.1's daemon logs when a node's process ends badly, e.g.
#: ``node exited with error: Signal(9) node_id=tick dataflow_id=01a2...``.
_EXIT_LINE = re.compile(
    r"node exited with error: (?P<how>\w+)\((?P<code>-?\d+)\) "
    r"node_id=(?P<node>\S+) dataflow_id=(?P<flow>[\w-]+)"
)
#: A line of ``dora logs``: ``03:00:30 stdout tick: text``.
_LOG_PREFIX = re.compile(r"^\d\d:\d\d:\d\d \w+ (?P<node>[^:\s]+): ?")
_TRACEBACK = "Traceback (most recent call last):"
#: Terminal colours: a kernel sets FORCE_COLOR and CLICOLOR_FORCE, which dora-rs obeys.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RUNTIME_FAILED = "RuntimeError: Dora Runtime raised an error."
#: What a node's panel says when dora-rs reported it failed but not why.
UNKNOWN_END = (
    "the node's process ended without finishing (dora-rs reported the node failed;"
    " killed by a signal?)"
)


#: How a node's process ended badly, as dora-rs's daemon logs it: ("Signal", 9), ("ExitCode", 3).
Exit = tuple[str, int]


def describe_exit(exit: Exit | None, stopping: bool = False) -> str:
    """What a panel says for dora's ``Signal(9)`` / ``ExitCode(3)`` of a node's process.

    ``stopping``: the dataflow was being stopped, so a signal is dora-rs
    ending a node that did not stop within the grace period.

    >>> describe_exit(("Signal", 9))
    "the node's process was killed by signal 9 (SIGKILL) before it finished"
    >>> describe_exit(("ExitCode", 3))
    "the node's process exited with code 3"
    >>> describe_exit(("Signal", 15), stopping=True)
    'the node did not stop within the grace period: dora-rs killed it with signal 15 (SIGTERM)'
    """
    if exit is None:
        return UNKNOWN_END
    how, code = exit
    if how == "Signal":
        try:
            name = signal.Signals(code).name
        except ValueError:
            name = "unknown"
        if stopping:
            return (
                "the node did not stop within the grace period: dora-rs killed it with"
                f" signal {code} ({name})"
            )
        return f"the node's process was killed by signal {code} ({name}) before it finished"
    if how == "ExitCode":
        return f"the node's process exited with code {code}"
    return f"the node's process ended with an error ({how} {code})"


def traceback_in_log(text: str, node_id: str) -> str | None:
    """The last Python traceback in ``dora logs`` output of ``node_id``, without dora's prefixes.

    dora's Python runtime wraps an operator's traceback in its own report
    ("Caused by: ... 3: Traceback ..."); the innermost one is the user's. The
    excerpt ends before dora's ``Location:`` line. When the last traceback is
    the runtime's own (it failed because of something else, e.g. another
    node), its "Caused by" chain is what says why.

    >>> log = "\\n".join(f"03:00:30 stdout a: {line}" for line in [
    ...     "Traceback (most recent call last):",
    ...     '  File "a.py", line 1, in <module>',
    ...     "    import nowhere",
    ...     "ModuleNotFoundError: No module named 'nowhere'"])
    >>> print(traceback_in_log(log, "a"))
    Traceback (most recent call last):
      File "a.py", line 1, in <module>
        import nowhere
    ModuleNotFoundError: No module named 'nowhere'
    """
    lines = []
    for line in _ANSI.sub("", text).splitlines():
        found = _LOG_PREFIX.match(line)
        if found is not None and found.group("node") == node_id:
            lines.append(line[found.end() :])
    starts = [i for i, line in enumerate(lines) if _TRACEBACK in line]
    if not starts:
        return None
    first = lines[starts[-1]]
    column = first.index(_TRACEBACK)  # after dora's "3: " when it is a nested one
    excerpt = [first[column:]]
    for line in lines[starts[-1] + 1 :]:
        if line.strip().startswith("Location:"):
            break
        excerpt.append(line[column:] if not line[:column].strip() else line.lstrip())
    while excerpt and not excerpt[-1].strip():
        excerpt.pop()
    body = "\n".join(excerpt[:60])
    if _RUNTIME_FAILED in body and "Caused by:" in body:
        chain = body.split("Caused by:", 1)[1].strip("\n").splitlines()
        return "dora-rs's runtime failed:\n" + "\n".join(line.strip() for line in chain)
    return body


def exits_in_log(text: str, dataflow_id: str) -> dict[str, Exit]:
    """Node id -> how its process ended badly, from a dora daemon's log, for one dataflow.

    >>> exits_in_log("node exited with error: Signal(9) node_id=a dataflow_id=f1", "f1")
    {'a': ('Signal', 9)}
    """
    return dict(exits_in_order(text, dataflow_id))


def exits_in_order(text: str, dataflow_id: str) -> list[tuple[str, Exit]]:
    """Every bad end of a node's process in a dora daemon's log, oldest first.

    A node a hot swap replaced ended too (dora-rs kills it): its line comes
    before its replacement's.

    >>> exits_in_order("node exited with error: Signal(15) node_id=a dataflow_id=f1\\n"
    ...                "node exited with error: ExitCode(3) node_id=a dataflow_id=f1", "f1")
    [('a', ('Signal', 15)), ('a', ('ExitCode', 3))]
    """
    return [
        (found.group("node"), (found.group("how"), int(found.group("code"))))
        for found in _EXIT_LINE.finditer(_ANSI.sub("", text))
        if found.group("flow") == dataflow_id
    ]
