"""Inside a network namespace with only loopback: serve the hub and run Lighthouse on it.

`python -m tests.web.offline_lighthouse DATA_DIR OUT_DIR PATH...` prints Lighthouse's summary as one
JSON line (see tests/browser/lighthouse.mjs); test_audit.py starts it under `unshare --net`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.livehub import LiveHub


def main(argv: list[str]) -> int:
    data_dir, out_dir, *paths = argv
    hub = LiveHub(Path(data_dir)).start()
    try:
        r = subprocess.run(["node", str(ROOT / "tests" / "browser" / "lighthouse.mjs"), out_dir,
                            *(hub.url + p for p in paths)], capture_output=True, text=True, timeout=280)
    finally:
        hub.stop()
    sys.stderr.write(r.stderr)
    sys.stdout.write(r.stdout)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
