"""`make bench`: speed and memory figures, side by side, as ratios. Not a pass/fail test."""

from __future__ import annotations

import importlib
import sys

SECTIONS = (
    ("Portal: cached pages against nginx serving the same bytes", "tests.web.bench"),
    ("Memory budget: every daemon after load", "tests.web.bench_memory"),
    ("How cost grows: 10, 1,000 and 10,000 notices and feedback items", "tests.web.bench_growth"),
    ("Network and production web", "tests.net.bench"),
    ("Announcements", "tests.announce.bench"),
    ("Spoken input", "tests.voice.bench"),
    ("Sync", "tests.sync.bench"),
    ("National central server: 1,652 hubs, SQLite and PostgreSQL", "tests.central.bench"),
    ("Faults and load: kills of hub-web and hub-announcer, 50 phones", "tests.faults.bench"),
)


def main(argv: list[str]) -> int:
    wanted = set(argv)
    for title, module in SECTIONS:
        if wanted and module.split(".")[1] not in wanted:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            raise
        print(f"\n== {title} ==", flush=True)
        rows = mod.run()
        width = max((len(k) for k, _ in rows), default=0)
        for label, value in rows:
            print(f"  {label:<{width}}  {value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
