"""pytest collects the notebooks here with nbval; the dataflow files beside them are
node code for dora, not modules to import for doctests."""

collect_ignore_glob = ["dataflows/*"]
