"""The embedded engine: graph model, descriptors, events, the engine and its threads.

Nothing here imports the layers above it (the node API, previews, Jupyter,
dora-rs); what node code sees is passed in (see
:class:`~dora_notebook.core.runner.NodeApi`).
"""
