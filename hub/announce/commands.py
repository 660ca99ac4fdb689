"""`hub announce ...`: the technician's loudspeaker test, the schedule and the proof-of-play log."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.announce import store
from hub.announce.devices import Amplifier
from hub.announce.player import RATE, Player, programme
from hub.core.context import open_context
from hub.core.daemon import load_settings
from hub.core.errors import HubError
from hub.core.media import MediaError, convert_audio
from hub.migrations import MIGRATIONS


def register(sub) -> None:
    p = sub.add_parser("announce", help="loudspeaker announcements: test playout, schedule, log")
    asub = p.add_subparsers(dest="announce_command", metavar="ACTION", required=True)

    a = asub.add_parser("play", help="test: play a file now through relay, chimes and speaker")
    a.add_argument("path", help="any audio file a phone makes (m4a, 3gp/AMR, opus, mp3, wav, ...)")
    a.add_argument("--repeats", type=int, default=1, choices=range(1, 6), metavar="N",
                   help="play the file N times between the chimes (1-5)")
    a.set_defaults(func=cmd_play)

    a = asub.add_parser("devices", help="list the sound output devices the player can use")
    a.set_defaults(func=cmd_devices)

    a = asub.add_parser("list", help="list scheduled announcements and their next time")
    a.add_argument("--all", action="store_true", help="include stopped and play-now ones")
    a.set_defaults(func=cmd_list)

    a = asub.add_parser("log", help="show the proof-of-play log (newest first)")
    a.add_argument("--csv", action="store_true", help="the whole log as CSV, oldest first")
    a.add_argument("--limit", type=int, default=50)
    a.set_defaults(func=cmd_log)


def _settings(args):
    return load_settings(args)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def cmd_play(args) -> int:
    """Decode the file with the media pipeline, then relay on, chime, file, chime, relay off."""
    settings = _settings(args)
    path = Path(args.path)
    if not path.is_file():
        raise HubError(f"{path}: no such file")
    with tempfile.TemporaryDirectory(prefix="hub-play-") as tmp:
        try:
            converted = convert_audio(path, Path(tmp))
        except MediaError as e:
            raise HubError(f"{path}: not a sound file the hub can play"
                           f" ({_one_line(e.detail or e.code)})") from None
        # The device first: a missing sound card should not click the relay.
        with Player.from_settings(settings) as player, Amplifier.from_settings(settings) as amp:
            print(f"{amp.describe()}; audio device {settings.audio_output_device!r},"
                  f" volume {settings.volume:g}", flush=True)
            amp.on()
            print(f"amplifier on, warmed up {amp.warmup_seconds:g} s; playing", flush=True)
            result = player.play(programme(converted["loud"], args.repeats))
            amp.off()
            print("amplifier off", flush=True)
    print(f"played {path.name} ({converted['original_format']}, {converted['duration']:.1f} s)"
          f" x{args.repeats} with chimes: {result.frames / RATE:.1f} s of sound")
    return 0


def cmd_devices(args) -> int:
    settings = _settings(args)
    player = Player.from_settings(settings)
    try:
        for name in player.output_devices():
            mark = "*" if name == settings.audio_output_device else " "
            print(f"{mark} {name}")
    finally:
        player.close()
    return 0


def _context(args):
    return open_context(_settings(args), MIGRATIONS, migrate=False)


def cmd_list(args) -> int:
    ctx = _context(args)
    zone = ZoneInfo(ctx.settings.timezone)
    rows = store.listing(ctx.db, include_stopped=args.all)
    for a in rows:
        nxt = store.parse_time(a["next_at"]).astimezone(zone).strftime("%Y-%m-%d %H:%M") \
            if a["next_at"] else "-"
        stopped = a["rrule"] and not a["active"]
        flags = ("urgent " if a["urgent"] else "") + ("stopped " if stopped else "")
        rule = (a["rrule"] or "play now").replace("\n", " ")
        print(f"{nxt}\t{a['title'] or a['id']}\tx{a['repeats']}\t{flags.strip()}\t{rule}")
    if not rows:
        print("no scheduled announcements", file=sys.stderr)
    return 0


def cmd_log(args) -> int:
    ctx = _context(args)
    if args.csv:
        sys.stdout.write(store.export_csv(ctx.db))
        return 0
    for r in store.log(ctx.db, limit=args.limit):
        seconds = r["duration_ms"] / 1000
        print(f"{r['created_at']}\t{r['outcome']}\t{seconds:.1f} s\t{r['title'] or '-'}"
              f"\t{r['detail']}")
    return 0
