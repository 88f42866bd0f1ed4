"""Exceptions the package raises on purpose.

Every message names what was wrong and where (the node, the field), so that a
magic or the CLI can show it as one line without a traceback.
"""

from __future__ import annotations

__all__ = [
    "DataflowError",
    "GraphError",
    "MissingExtraError",
    "NodeError",
    "PreviewError",
    "ReloadError",
    "UnsupportedError",
]


class DataflowError(Exception):
    """Base class of every error this package raises deliberately."""


class GraphError(DataflowError, ValueError):
    """The dataflow description is invalid; raised before anything starts.

    >>> raise GraphError("node 'b': inputs.x: unknown source node 'a'")
    Traceback (most recent call last):
    ...
    dora_notebook.errors.GraphError: node 'b': inputs.x: unknown source node 'a'
    """


class NodeError(DataflowError, RuntimeError):
    """A node misused the dora API (for example an undeclared output id)."""


class UnsupportedError(NodeError, NotImplementedError):
    """Node code asked for what only another engine does; the message names it.

    A ``NotImplementedError`` too, as dora's own ``MockNode`` raises for them.
    """


class PreviewError(DataflowError, ValueError):
    """The payload cannot be shown; the message says why, on one line.

    >>> from dora_notebook.preview.normalize import normalize
    >>> normalize(object())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    dora_notebook.errors.PreviewError: cannot preview object: pass a DataFrame, ...
    """


class ReloadError(DataflowError, RuntimeError):
    """A node redefined while its graph runs could not be swapped in.

    The previous version keeps running; the message says why.
    """


class MissingExtraError(DataflowError, ModuleNotFoundError):
    """A part of the package needs an extra that is not installed.

    IPython shows it as its one line, not as a traceback (``%load_ext``
    re-raises what ``load_ipython_extension`` raises).

    >>> MissingExtraError("needs [jupyter]")._render_traceback_()
    ['MissingExtraError: needs [jupyter]']
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class StopInterrupted(KeyboardInterrupt):
    """The user interrupted a stop while it waited; the stop itself completed.

    ``stuck`` names the nodes it did not wait for.
    """

    def __init__(self, stuck: list[str]) -> None:
        super().__init__(stuck)
        self.stuck = stuck
