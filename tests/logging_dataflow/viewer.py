"""Prints the first warning of talker it gets on dora/logs/warn/talker, then ends."""

import json

from dora import Node

for event in Node():
    if event["type"] == "INPUT":
        record = json.loads(event["value"][0].as_py())
        print("got", record["level"], record["node_id"], record["message"])
        break
