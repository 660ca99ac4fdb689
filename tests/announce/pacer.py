"""Read raw sound from stdin no faster than a real sound card would, into a new file.

Used as an ALSA file plugin's pipe (``file "|python3 pacer.py PREFIX"``): the
pipe fills and PyAudio's blocking writes wait, as with real hardware, so a
long announcement takes its real time and can be interrupted. At end of
input the rest is written at once, so closing the stream never waits.
"""

import os
import sys
import time

RATE_BYTES = 48000 * 2


def main() -> int:
    out_path = f"{sys.argv[1]}.{time.time_ns()}"
    speed = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0  # >1: faster than real time
    start = time.monotonic()
    done = 0
    with open(out_path, "wb") as out:
        while True:
            data = os.read(0, 4800)
            if not data:
                return 0
            out.write(data)
            out.flush()
            done += len(data)
            ahead = done / RATE_BYTES / speed - (time.monotonic() - start)
            if ahead > 0.2 / speed:
                time.sleep(ahead - 0.2 / speed)


if __name__ == "__main__":
    sys.exit(main())
