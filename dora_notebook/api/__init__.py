"""What node code sees: ``Node``, the ``dora`` module, and the oocana-style context."""
