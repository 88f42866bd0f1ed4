"""Send FRAMES synthetic 64x48 RGB frames, one per timer tick, then stop."""

import os

import numpy as np
import pyarrow as pa
from dora import Node

HEIGHT, WIDTH = 48, 64


def main() -> None:
    node = Node()
    frames = int(os.getenv("FRAMES", "20"))
    sent = 0
    for event in node:
        if event["type"] != "INPUT":
            continue
        level = int(255 * sent / max(frames - 1, 1))
        frame = np.full((HEIGHT, WIDTH, 3), level, dtype=np.uint8)
        node.send_output("frame", pa.array(frame.ravel()), event["metadata"])
        sent += 1
        if sent == frames:
            break
    print(f"sent {sent} frames")


if __name__ == "__main__":
    main()
