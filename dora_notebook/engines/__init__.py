"""Engines other than the embedded one (see :mod:`dora_notebook.runtime`).

* :mod:`dora_notebook.engines.dora`: the graph on real dora-rs, one process
  per node, observed from the kernel through a dynamic bridge node.
"""
