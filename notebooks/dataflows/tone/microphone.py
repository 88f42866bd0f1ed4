"""A synthetic microphone: one chunk of audio per timer tick.

The tone starts at A3 (220 Hz) and rises by a semitone every chunk, with a
little noise on top. CHUNKS (from the descriptor's env) says how many chunks
to record before the node ends.
"""

import os

import numpy as np
import pyarrow as pa
from dora import Node

SAMPLE_RATE = 8000  # samples per second
CHUNK = 400  # samples per chunk: 50 ms of audio


def main():
    node = Node()
    chunks = int(os.getenv("CHUNKS", "20"))
    rng = np.random.default_rng(seed=1)
    sent = 0
    for event in node:
        if event["type"] == "INPUT":
            frequency = 220.0 * 2 ** (sent / 12)
            t = (np.arange(CHUNK) + sent * CHUNK) / SAMPLE_RATE
            audio = 0.6 * np.sin(2 * np.pi * frequency * t) + 0.1 * rng.standard_normal(CHUNK)
            node.send_output("audio", pa.array(audio.astype(np.float32)), event["metadata"])
            sent += 1
            if sent == chunks:
                break
    print(f"recorded {sent} chunks")


if __name__ == "__main__":
    main()
