"""The dora-rs side: export, the node shim, the dora engine, its bridge and processes.

:mod:`~dora_notebook.dora_rs.shim` is what an exported node imports on a dora
machine: it needs pyarrow and nothing of Jupyter.
"""
