"""Print every brightness value, then a summary when the input closes."""

from dora import Node

node = Node()
values = []
for event in node:
    if event["type"] == "INPUT":
        values.append(event["value"][0].as_py())
        print(f"frame {len(values):2d}: brightness {values[-1]:6.1f}")
    elif event["type"] == "INPUT_CLOSED":
        print(f"{len(values)} frames, brightest {max(values):.1f}")
