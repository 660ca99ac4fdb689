"""What a running daemon cannot use right now, for ``hub doctor`` and the clerk console.

A daemon whose sound card or GPIO pin is missing keeps running and tries
again (a USB sound card may be plugged in later), instead of exiting into a
restart loop. Meanwhile it says what is missing here: one small JSON file per
daemon in ``DATA_DIR/status/``, rewritten only when its problems change, so
the SD card sees one write per change, not one per retry.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from hub.core.files import write_durably

STATUS_DIR = "status"


class Problems:
    """The problems one daemon has now, by part (``amplifier``, ``speaker``, ``button``...)."""

    def __init__(self, data_dir: Path, daemon: str):
        self.path = Path(data_dir) / STATUS_DIR / f"{daemon}.json"
        self.daemon = daemon
        self.current: dict[str, dict] = {}

    def start(self) -> None:
        """A new process starts with no problems; forget what an earlier one said."""
        self.current = {}
        self.path.unlink(missing_ok=True)

    def set(self, part: str, text: str) -> None:
        if self.current.get(part, {}).get("text") == text:
            return
        since = self.current.get(part, {}).get("since") or datetime.now(UTC).isoformat(timespec="seconds")
        self.current[part] = {"text": text, "since": since}
        self._save()

    def clear(self, part: str) -> None:
        if self.current.pop(part, None) is not None:
            self._save()

    def summary(self) -> str:
        """One line for systemd's STATUS=, empty when all is well."""
        return "; ".join(f"{p['text']}" for p in self.current.values())

    def _save(self) -> None:
        data = {"daemon": self.daemon, "pid": os.getpid(), "problems": self.current}
        try:
            write_durably(self.path, json.dumps(data, ensure_ascii=False).encode())
        except OSError:
            pass  # a full or read-only disk must not stop the daemon; the journal still says it


def current(data_dir: Path) -> dict[str, dict[str, dict]]:
    """Problems of every daemon that is still running: daemon → part → {text, since}."""
    out: dict[str, dict[str, dict]] = {}
    folder = Path(data_dir) / STATUS_DIR
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if data.get("problems") and Path(f"/proc/{pid}").exists():
            out[str(data.get("daemon") or path.stem)] = data["problems"]
    return out
