"""What recording a session costs: CPU and resident memory of the ``audio`` artifact's path
(voxgate.history.audio_recording) for a long call, both sides speaking, at real-time frame sizes.

The recorder receives what a live session sends it: caller frames of 20 ms (24 kHz PCM, as ``/v1/ws``
clients send) and agent chunks of 50 ms, placed on a simulated clock so the run takes seconds instead of
the call's length; the CPU time is then divided by the call's length (CPU share of one core per
session). RSS is sampled after every simulated minute: a recording must not grow the process.

    .venv/bin/python bench/recording_cost.py --minutes 10
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from voxgate.history.audio_recording import OggOpusWriter, TwoTrackRecording

WIRE_RATE = 24_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    clock = [0.0]
    rng = np.random.default_rng(1)
    speech = (np.sin(np.arange(WIRE_RATE) * 2 * np.pi * 180 / WIRE_RATE) * 6000).astype(np.int16)
    speech = (speech + rng.normal(0, 800, speech.size)).astype(np.int16)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "audio.ogg"
        recording = TwoTrackRecording(OggOpusWriter(path), clock=lambda: clock[0])
        frames = int(args.minutes * 60 / 0.02)
        rss: list[float] = [rss_mb()]
        started = time.process_time()
        for index in range(frames):
            clock[0] += 0.02
            offset = (index * 480) % (WIRE_RATE - 480)
            caller_talks = (index // 250) % 2 == 0  # 5 s turns: the caller, then the agent
            caller = speech[offset : offset + 480] if caller_talks else np.zeros(480, np.int16)
            recording.caller(caller, WIRE_RATE)
            if not caller_talks and index % 5 == 0:  # 50 ms (not 20 ms) agent chunks, paced
                recording.agent(speech[offset : offset + 1200], WIRE_RATE, f"reply_{index // 500}")
            if index % 3000 == 0:
                rss.append(rss_mb())
        recording.finish()
        cpu = time.process_time() - started
        rss.append(rss_mb())
        size = path.stat().st_size
    seconds = args.minutes * 60
    print(f"call length           {seconds:.0f} s")
    print(f"recording CPU         {cpu:.2f} s = {100 * cpu / seconds:.2f} % of one core per session")
    print(f"file size             {size / 1024:.0f} KiB ({8 * size / seconds / 1000:.1f} kbit/s)")
    print("RSS each minute (MB)  " + " ".join(f"{value:.1f}" for value in rss[1:]))


if __name__ == "__main__":
    main()
