"""Note what this process looks like from the node's code, then exit."""

from __future__ import annotations

import os
import sys

import recorder
from dora import Node

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["GREETING", "NUMBER", "RATIO", "EMPTY", "FLAG", "CONFORMANCE_INHERITED", "OP_SETTING"]

rec = recorder.Recorder("envnode")
node = Node()
rec.note(
    argv=sys.argv[1:],
    argv0_is_this_file=os.path.abspath(sys.argv[0]) == os.path.abspath(__file__),
    name=__name__,
    cwd_is_descriptor_folder=os.path.samefile(os.getcwd(), HERE),
    environ={name: os.environ.get(name) for name in NAMES},
    getenv={name: os.getenv(name) for name in NAMES},
)
