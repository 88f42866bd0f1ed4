"""dora's extension store: opaque values a dataflow's nodes share by (namespace, key).

dora-rs 1.1 keeps this table in its daemon (``Node.extension_store``,
``extension_load``, ``extension_drop``, ``drain_dropped_extension_keys``);
here one table belongs to each run of the embedded engine. Its rules are
dora's: only the node that stored a key may overwrite it; everyone who
stored or read a key is told when it is dropped; a node's entries are
reclaimed when its code exits (a hot swap of a custom node included). The
table never interprets what it holds.

Exits are noticed when the table is next used, not when they happen; that
is enough, because notifications are only ever seen by polling
:meth:`ExtensionTable.drain`.

>>> import threading
>>> table = ExtensionTable()
>>> me = threading.current_thread()
>>> table.store("a", me, "ns", "k", b"v")
>>> table.load("b", me, "ns", "k")
b'v'
>>> table.drop("ns", "k")
>>> table.drain("a", "ns"), table.drain("b", "ns"), table.drain("b", "ns")
(['k'], ['k'], [])
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

from ..errors import NodeError

__all__ = ["MAX_ENTRIES", "ExtensionTable", "table_of"]

#: At most this many entries per dataflow, as in dora-rs: a node that stores
#: one key per frame must not exhaust memory.
MAX_ENTRIES = 8192


@dataclass
class _Entry:
    value: bytes
    owner: str
    #: The thread that ran the owner's code when it stored the value: once
    #: it has ended (the node exited or was swapped), the entry is reclaimed.
    owner_thread: threading.Thread
    touched_by: set[str] = field(default_factory=set)


class ExtensionTable:
    """The extension store of one run; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        # node id -> namespace -> keys dropped since that node last drained them
        self._dropped: dict[str, dict[str, list[str]]] = {}

    def store(
        self, node: str, thread: threading.Thread, namespace: str, key: str, value: bytes
    ) -> None:
        """Store or overwrite ``namespace/key`` for ``node``, whose code runs on ``thread``."""
        with self._lock:
            self._reclaim_exited()
            entry = self._entries.get((namespace, key))
            if entry is not None:
                if entry.owner != node:
                    raise NodeError(
                        f"node {node!r}: extension key `{namespace}/{key}` is owned by node "
                        f"{entry.owner!r}, which alone may overwrite it; use another key"
                    )
                entry.value = value
                return
            if len(self._entries) >= MAX_ENTRIES:
                raise NodeError(
                    f"node {node!r}: extension table full for this dataflow ({MAX_ENTRIES} "
                    f"entries); cannot store `{namespace}/{key}`: drop keys no longer needed"
                )
            self._entries[namespace, key] = _Entry(value, node, thread, {node})

    def load(
        self, node: str, thread: threading.Thread, namespace: str, key: str, remove: bool = False
    ) -> bytes | None:
        """The value of ``namespace/key`` (``node`` will be told of its drop), or None."""
        with self._lock:
            self._reclaim_exited()
            entry = self._entries.get((namespace, key))
            if entry is None:
                return None
            entry.touched_by.add(node)
            if remove:
                self._drop(namespace, key)
            return entry.value

    def drop(self, namespace: str, key: str) -> None:
        """Drop ``namespace/key`` and tell everyone who touched it; an absent key is fine."""
        with self._lock:
            self._reclaim_exited()
            self._drop(namespace, key)

    def drain(self, node: str, namespace: str) -> list[str]:
        """The keys of ``namespace`` dropped since ``node`` last asked, oldest first."""
        with self._lock:
            self._reclaim_exited()
            return self._dropped.get(node, {}).pop(namespace, [])

    def _drop(self, namespace: str, key: str) -> None:
        entry = self._entries.pop((namespace, key), None)
        if entry is None:
            return
        for node in sorted(entry.touched_by):
            self._dropped.setdefault(node, {}).setdefault(namespace, []).append(key)

    def _reclaim_exited(self) -> None:
        exited = [k for k, e in self._entries.items() if not e.owner_thread.is_alive()]
        for namespace, key in exited:
            self._drop(namespace, key)


_tables: weakref.WeakKeyDictionary[object, ExtensionTable] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def table_of(engine: object) -> ExtensionTable:
    """The extension table of ``engine``'s run, made on first use; it goes with the run."""
    with _tables_lock:
        table = _tables.get(engine)
        if table is None:
            table = _tables[engine] = ExtensionTable()
        return table
