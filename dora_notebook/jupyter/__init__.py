"""The notebook layer: magics, their arguments, the notebook reader, the kernel
session, widgets and the graph view.

The only part of the package that imports IPython or ipywidgets (the
``[jupyter]`` extra); its argument grammar and notebook reader need neither.
"""
