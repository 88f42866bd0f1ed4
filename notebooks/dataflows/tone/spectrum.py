"""A dora operator: the loudest frequency of each chunk of audio."""

import numpy as np
import pyarrow as pa
from dora import DoraStatus

SAMPLE_RATE = 8000
FFT_SIZE = 8192  # zero-padded: about 1 Hz between frequency bins


class Operator:
    """Find the pitch of each audio chunk."""

    def on_event(
        self,
        dora_event,
        send_output,
    ) -> DoraStatus:
        if dora_event["type"] == "INPUT":
            audio = dora_event["value"].to_numpy()
            spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n=FFT_SIZE))
            pitch = float(np.argmax(spectrum)) * SAMPLE_RATE / FFT_SIZE
            send_output("pitch", pa.array([pitch]), dora_event["metadata"])
        return DoraStatus.CONTINUE
