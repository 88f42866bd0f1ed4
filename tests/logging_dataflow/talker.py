"""Logs once with each API, then ends."""

import logging

from dora import Node

node = Node()
for event in node:
    if event["type"] == "INPUT":
        logging.info("py info %d", 1)
        logging.warning("py warning")
        logging.debug("py debug")
        node.log_info("node info")
        node.log("warn", "node warn", target="t", fields={"k": "v"})
        node.log_debug("node debug")
        node.log_trace("node trace")
        node.log_error("node error")
        print("printed")
        break
