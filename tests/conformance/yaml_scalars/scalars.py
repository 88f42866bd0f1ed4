"""Note the env values the descriptor gave this node."""

from __future__ import annotations

import os

import recorder
from dora import Node

NAMES = [
    "YES_WORD",
    "ON_WORD",
    "OFF_WORD",
    "TRUE_WORD",
    "LEADING_ZERO",
    "OCTAL",
    "EXPONENT",
    "UNDERSCORES",
    "CLOCK",
    "DATE",
]

rec = recorder.Recorder("scalars")
node = Node()
rec.note(environ={name: os.environ.get(name) for name in NAMES})
