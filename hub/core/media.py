"""Media files: checked by content with ffprobe, converted with ffmpeg, stored durably.

Every file lives in the media directory under a server-made name, and is
written as a temporary file, fsynced, renamed into place, and the directory
fsynced. nginx serves the web copies straight from that directory as its own
user (www-data on a Pi), which is in the hub's group: files are 0640 in a
0750 directory, whatever the process's umask. An upload becomes:

- audio: a 16 kHz mono WAV master (for transcription), a small MP3 that every
  phone browser plays, and a loudness-normalised WAV for the loudspeaker
  (EBU R128, -16 LUFS);
- image: a JPEG at most 1024 pixels wide, without the phone's metadata.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from hub.core.claims import Claims
from hub.core.db import new_id, transaction, utcnow
from hub.core.errors import Busy, DiskFull, HubError
from hub.core.files import DIR_MODE, FILE_MODE, sha256_of, write_durably

#: Audio container formats phones produce, as ffprobe names them.
AUDIO_FORMATS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a/3gp",
    "ogg": "ogg",
    "matroska,webm": "webm",
    "mp3": "mp3",
    "wav": "wav",
    "amr": "amr",
    "flac": "flac",
    "aac": "aac",
}
IMAGE_CODECS = {"mjpeg", "png", "webp", "gif", "bmp"}
LOUDNESS = "loudnorm=I=-16:TP=-1.5:LRA=11"
LOUD_RATE = 48000
MASTER_RATE = 16000
WEB_RATE = 22050
#: A decoded recording may run this much past max_seconds before it is refused (ffmpeg stops
#: decoding a little after it, so a file without a duration cannot be decoded for hours).
LENGTH_SLACK = 1.0
#: Bytes a second of audio takes while it is converted: the 16 kHz master, the 48 kHz
#: loudspeaker copy (both 16-bit) and the 40 kbit/s web copy; once in the work folder, once stored.
BYTES_PER_SECOND = MASTER_RATE * 2 + LOUD_RATE * 2 + 40_000 // 8
#: Modes of media files and of the media directory: the hub's user writes, its group reads.


class MediaError(HubError):
    """An upload that is not usable media. ``code`` names the reason for the user."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass
class Probe:
    format_name: str
    codec_type: str
    codec_name: str
    duration: float
    width: int = 0
    height: int = 0


def _time_left(deadline: float | None, cap: float) -> float:
    """Seconds a step may take: *cap*, or less when the whole conversion has a *deadline* (monotonic)."""
    if deadline is None:
        return cap
    left = deadline - time.monotonic()
    if left <= 0:
        raise Busy("the conversion ran out of time")
    return min(cap, left)


def probe(path: Path, deadline: float | None = None) -> Probe:
    """Ask ffprobe what *path* really is; raise MediaError if it is not media."""
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
            capture_output=True, timeout=_time_left(deadline, 30), check=False,
        )
    except FileNotFoundError:
        raise HubError("ffprobe is not installed (apt-get install ffmpeg)") from None
    except subprocess.TimeoutExpired:
        if deadline is not None and time.monotonic() >= deadline:
            raise Busy("the conversion ran out of time") from None
        raise MediaError("unreadable", "ffprobe timed out") from None
    if out.returncode != 0:
        raise MediaError("unreadable", out.stderr.decode(errors="replace").strip()[:200])
    info = json.loads(out.stdout or b"{}")
    fmt = info.get("format", {})
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    video = [s for s in streams if s.get("codec_type") == "video"]
    if audio:
        s = audio[0]
    elif video:
        s = video[0]
    else:
        raise MediaError("unreadable", "no audio or image stream")
    try:
        duration = float(fmt.get("duration") or s.get("duration") or 0)
    except ValueError:
        duration = 0.0
    return Probe(fmt.get("format_name", ""), s["codec_type"], s.get("codec_name", ""), duration,
                 int(s.get("width") or 0), int(s.get("height") or 0))


#: Codecs whose decoder reports the comfort-noise (DTX) frames phones send in pauses as
#: errors: it cannot decode them yet and skips them, so the pauses come out shorter.
DTX_CODECS = {"amr_nb", "amr_wb"}
#: Shortest sound worth keeping, in seconds.
MIN_SECONDS = 0.2


def _ffmpeg(args: list[str], timeout: float = 300, strict: bool = True, deadline: float | None = None,
            stats: bool = False) -> str:
    """Run ffmpeg on one input (*args* start with ``-i``); raise MediaError if it fails.

    ffmpeg is judged by its exit status, and the caller checks what it wrote. A line
    on stderr is not a failure: libraries ffmpeg loads print there too (libgcrypt's
    "Warning: using insecure memory!" where memory cannot be locked, as under a
    service's limits). With *strict*, a decode error stops ffmpeg with a non-zero
    status (-xerror, and -err_detect explode so that decoders do not paper over
    damage); stderr only explains a failure. With *stats*, ffmpeg also prints its
    closing figures (what each output got, see :func:`_output_samples`), each line
    tagged with its level; the tagged stderr is returned.
    """
    strictness = ["-xerror", "-err_detect", "explode"] if strict else []
    level = ["-loglevel", "level+verbose", "-nostats"] if stats else ["-v", "error"]
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", *level, "-y", *strictness, *args]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=_time_left(deadline, timeout), check=False)
    except subprocess.TimeoutExpired:
        if deadline is not None and time.monotonic() >= deadline:
            raise Busy("the conversion ran out of time") from None
        raise MediaError("unreadable", "conversion timed out") from None
    err = out.stderr.decode(errors="replace")
    if out.returncode != 0:
        lines = [x for x in err.splitlines() if x.strip()]
        if stats:
            tagged = [x for x in lines if _LEVEL_RE.search(x)]
            lines = [_LEVEL_RE.sub("", x, count=1) for x in tagged] or [x for x in lines if not _TAG_RE.search(x)]
        raise MediaError("unreadable", "; ".join(lines[-3:])[:300] or f"ffmpeg exit {out.returncode}")
    return err


#: A stderr line of ffmpeg at level error or worse, under ``-loglevel level+...``.
_LEVEL_RE = re.compile(r"\[(?:error|fatal|panic)\] ")
#: Any level tag: a line without one comes from a library ffmpeg loaded.
_TAG_RE = re.compile(r"\[(?:trace|debug|verbose|info|warning|error|fatal|panic)\] ")
#: ffmpeg's closing figures: "Output file #1 (web.mp3):" then "Output stream #1:0 (audio): 165 frames
#: encoded (94594 samples); ...".
_OUTPUT_FILE_RE = re.compile(r"Output file #(\d+) ")
_OUTPUT_SAMPLES_RE = re.compile(r"Output stream #(\d+):\d+ \(audio\): \d+ frames encoded \((\d+) samples\)")


def _output_samples(stderr: str) -> dict[int, int]:
    """Samples ffmpeg encoded into each output file, by the output's index, from its closing figures."""
    got: dict[int, int] = {}
    for line in stderr.splitlines():
        m = _OUTPUT_SAMPLES_RE.search(line)
        if m:
            got[int(m.group(1))] = got.get(int(m.group(1)), 0) + int(m.group(2))
    return got


def _check_length(got: float, promised: float, what: str, dtx: bool = False) -> None:
    """Refuse output much shorter than its input promised (packets lost to damage).

    The container's duration can be an estimate (MP3 from its bit rate), and AAC and
    MP3 pad a little, so some slack is allowed. AMR with DTX decodes shorter by design,
    and a stream without a duration (MediaRecorder's WebM) promises nothing.
    """
    if got < MIN_SECONDS:
        raise MediaError("unreadable", f"no sound in {what}")
    if not dtx and promised > 0 and got < promised * 0.9 - 0.5:
        raise MediaError("unreadable", f"{what}: {got:.2f} s decoded of {promised:.2f} s")


def _duration_of_wav(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def expected_seconds(header_seconds: float, max_seconds: float | None) -> float:
    """How long a recording may decode to, for the free-space check before converting it.

    A header's duration can be an estimate (a VBR MP3) or missing (a streamed WebM), so it
    is doubled, and without one the limit counts; never more than the decode may make.
    """
    cap = (max_seconds + LENGTH_SLACK) if max_seconds else None
    if header_seconds > 0:
        guess = header_seconds * 2 + 10
        return min(guess, cap) if cap else guess
    return cap if cap else 3600.0


def convert_audio(src: Path, workdir: Path, max_seconds: float | None = None, deadline: float | None = None,
                  check_room=None) -> dict:
    """Check *src* is audio and make the master, web and loud copies in *workdir*.

    The decoded length decides, not the header: ffmpeg stops a little past
    *max_seconds* (a stream without a duration cannot become hours of audio),
    and output longer than *max_seconds* is refused as ``too_long``.
    *check_room(seconds)* is called before decoding, with the longest the
    output may be; every step ends by the monotonic *deadline* or raises Busy.

    Two processes in all: ffprobe reads the container (no decoding) to choose,
    and one ffmpeg run decodes once and writes the three copies.
    """
    info = probe(src, deadline)
    if info.codec_type != "audio":
        raise MediaError("not_audio", info.format_name)
    if info.format_name not in AUDIO_FORMATS:
        raise MediaError("not_audio", info.format_name)
    if max_seconds and info.duration > max_seconds + LENGTH_SLACK:
        raise MediaError("too_long", f"{info.duration:.0f} s")
    if check_room is not None:
        check_room(expected_seconds(info.duration, max_seconds))
    master = workdir / "master.wav"
    web = workdir / "web.mp3"
    loud = workdir / "loud.wav"
    dtx = info.codec_name in DTX_CODECS
    # -t before -i limits the decode itself, for every output at once.
    limit = ["-t", f"{max_seconds + LENGTH_SLACK:.3f}"] if max_seconds else []
    # One run decodes once and writes the three copies: the master, and from the master's
    # samples the web copy and the loudspeaker copy (loudnorm works at 192 kHz, then 48 kHz).
    graph = (f"[0:a:0]aformat=sample_rates={MASTER_RATE}:channel_layouts=mono,asplit=3[master][web][loud];"
             f"[loud]{LOUDNESS},aresample={LOUD_RATE}[louder]")
    stderr = _ffmpeg([*limit, "-i", str(src), "-filter_complex", graph,
                      "-map", "[master]", "-c:a", "pcm_s16le", str(master),
                      "-map", "[web]", "-ar", str(WEB_RATE), "-c:a", "libmp3lame", "-b:a", "40k", str(web),
                      "-map", "[louder]", "-c:a", "pcm_s16le", str(loud)],
                     strict=not dtx, deadline=deadline, stats=True)
    duration = _duration_of_wav(master)
    if max_seconds and duration > max_seconds + LENGTH_SLACK / 2:
        raise MediaError("too_long", f"decoded {duration:.0f} s or more")
    _check_length(duration, info.duration, "the recording", dtx=dtx)
    _check_length(_web_seconds(web, _output_samples(stderr).get(1), deadline), duration, "the web copy")
    _check_length(_duration_of_wav(loud), duration, "the loudspeaker copy")
    return {
        "master": master, "web": web, "loud": loud, "duration": duration,
        "original_format": AUDIO_FORMATS[info.format_name],
    }


def _web_seconds(web: Path, samples: int | None, deadline: float | None) -> float:
    """Length of the web copy: from ffmpeg's own figures, or (an ffmpeg that did not print them) ffprobe's."""
    if not web.is_file() or web.stat().st_size == 0:
        raise MediaError("unreadable", "no web copy was written")
    if samples is not None:
        return samples / WEB_RATE
    made = probe(web, deadline)
    if made.codec_name != "mp3":
        raise MediaError("unreadable", f"web copy is {made.codec_name}")
    return made.duration


def convert_image(src: Path, workdir: Path, deadline: float | None = None) -> dict:
    info = probe(src, deadline)
    if info.codec_type != "video" or info.codec_name not in IMAGE_CODECS:
        raise MediaError("not_image", info.codec_name)
    web = workdir / "web.jpg"
    _ffmpeg(["-i", str(src), "-frames:v", "1", "-map_metadata", "-1",
             "-vf", "scale='min(1024,iw)':-2", "-q:v", "5", str(web)], deadline=deadline)
    made = probe(web, deadline)
    if made.codec_type != "video" or made.codec_name != "mjpeg" or not made.width:
        raise MediaError("unreadable", f"picture came out as {made.codec_name or 'nothing'}")
    return {"web": web, "original_format": info.codec_name, "width": made.width, "height": made.height}


class MediaStore:
    """Where media files live, and the only code that writes them or their rows."""

    def __init__(self, db, media_dir: Path, hub_id: str):
        self.db = db
        self.dir = Path(media_dir)
        self.hub_id = hub_id

    def path(self, name: str) -> Path:
        # Names are made by us, but never trust a name to stay inside the folder.
        p = (self.dir / name).resolve()
        if p.parent != self.dir.resolve():
            raise ValueError(name)
        return p

    def _store_files(self, media_id: str, files: dict[str, Path]) -> dict[str, str]:
        """Write every file of one media item, or none: a failure removes those already written."""
        names = {}
        self.claims.release_committed(self._committed)
        self.claims.take(media_id)  # until the row is committed: see hub.core.claims
        try:
            for role, src in files.items():
                name = f"{media_id}.{role}{src.suffix}"
                write_durably(self.dir / name, source=src)
                names[role] = name
        except BaseException as e:
            self.discard(media_id)
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise DiskFull("the data disk is full") from None
            raise
        return names

    def check_room(self, seconds: float, workdir: Path, min_free_bytes: int = 0) -> None:
        """Refuse (DiskFull) a conversion whose output could leave less than *min_free_bytes* free.

        The output of *seconds* of audio lands in *workdir* first, then in the media folder.
        """
        need = int(seconds * BYTES_PER_SECOND)
        devices: dict[int, int] = {}
        for place, reserve in ((Path(workdir), 0), (self.dir, min_free_bytes)):
            place = place if place.exists() else place.parent
            dev = place.stat().st_dev
            devices[dev] = devices.get(dev, 0) + need + reserve
            if shutil.disk_usage(place).free < devices[dev]:
                raise DiskFull(f"{need // 1_000_000} MB more are needed to convert a {seconds:.0f} s recording")

    def prepare_audio(self, upload: Path, max_seconds: float | None = None, deadline: float | None = None,
                      min_free_bytes: int | None = None) -> dict:
        """Convert an audio upload and store its files; return the row to insert.

        Slow work happens here, outside any transaction. The caller inserts
        the row with :meth:`insert` in the same transaction as the record
        that refers to it, and calls :meth:`discard` if that fails. With
        *min_free_bytes*, the free space is checked first (:meth:`check_room`).
        """
        with tempfile.TemporaryDirectory(prefix="hub-audio-") as tmp:
            room = None if min_free_bytes is None else (lambda s: self.check_room(s, Path(tmp), min_free_bytes))
            c = convert_audio(Path(upload), Path(tmp), max_seconds, deadline, room)
            media_id = new_id()
            names = self._store_files(media_id, {"master": c["master"], "web": c["web"], "loud": c["loud"]})
            return {
                "id": media_id, "hub_id": self.hub_id, "kind": "audio",
                "master_name": names["master"], "web_name": names["web"], "web_type": "audio/mpeg",
                "loud_name": names["loud"], "duration_ms": int(c["duration"] * 1000),
                "bytes": c["web"].stat().st_size, "sha256": sha256_of(c["master"]),
                "original_format": c["original_format"], "created_at": utcnow(),
            }

    def prepare_image(self, upload: Path, deadline: float | None = None) -> dict:
        """Convert an image upload and store its file; return the row to insert."""
        with tempfile.TemporaryDirectory(prefix="hub-image-") as tmp:
            c = convert_image(Path(upload), Path(tmp), deadline)
            media_id = new_id()
            names = self._store_files(media_id, {"web": c["web"]})
            return {
                "id": media_id, "hub_id": self.hub_id, "kind": "image",
                "master_name": None, "web_name": names["web"], "web_type": "image/jpeg",
                "loud_name": None, "duration_ms": None, "bytes": c["web"].stat().st_size,
                "sha256": sha256_of(c["web"]), "original_format": c["original_format"],
                "width": c["width"], "height": c["height"], "created_at": utcnow(),
            }

    @staticmethod
    def insert(conn, row: dict) -> None:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        conn.execute(f"insert into media ({cols}) values ({marks})", tuple(row.values()))

    def add_audio(self, upload: Path, max_seconds: float | None = None) -> str:
        """Convert, store and record an audio file on its own; return the media id."""
        row = self.prepare_audio(upload, max_seconds)
        self._commit(row)
        return row["id"]

    def add_image(self, upload: Path) -> str:
        row = self.prepare_image(upload)
        self._commit(row)
        return row["id"]

    def _commit(self, row: dict) -> None:
        try:
            with transaction(self.db) as conn:
                self.insert(conn, row)
        except BaseException:
            self.discard(row["id"])
            raise
        self.claims.release(row["id"])

    def get(self, media_id: str) -> dict | None:
        rows = list(self.db.query("select * from media where id = ?", [media_id]))
        return rows[0] if rows else None

    def by_web_name(self, name: str) -> dict | None:
        rows = list(self.db.query("select * from media where web_name = ?", [name]))
        return rows[0] if rows else None

    def discard(self, media_id: str) -> None:
        """Remove files of a media row that was never committed (a failed request)."""
        for p in self.dir.glob(f"{media_id}.*"):
            p.unlink(missing_ok=True)
        self.claims.release(media_id)

    @property
    def claims(self) -> Claims:
        """Which media items living processes are still writing (a folder beside the media folder)."""
        return Claims(self.dir.parent / f".{self.dir.name}-claims", DIR_MODE, FILE_MODE)

    def _committed(self, ids: list[str]) -> list[str]:
        marks = ",".join("?" * len(ids))
        return [r["id"] for r in self.db.query(f"select id from media where id in ({marks})", ids)]

    def measure_images(self) -> int:
        """Give pictures stored before sizes were kept (migration 0008) their width and height."""
        n = 0
        for r in list(self.db.query("select id, web_name from media where kind = 'image' and width is null")):
            try:
                info = probe(self.path(r["web_name"]))
            except (HubError, OSError, ValueError):
                continue  # a missing or broken file: the page shows it without a size, as before
            if info.width and info.height:
                with transaction(self.db) as conn:
                    conn.execute("update media set width = ?, height = ? where id = ?",
                                 (info.width, info.height, r["id"]))
                n += 1
        return n

    def sweep(self, older_than_seconds: float = 3600) -> int:
        """Delete files of media rows that never committed (after a crash), and stale temp files.

        Files whose writer died (its claim is free) go at once; files with no claim at all (from
        before claims, or whose claim was lost) only when older than *older_than_seconds*.
        """
        if not self.dir.is_dir():
            return 0
        claims = self.claims
        claims.release_committed(self._committed)
        known = {r["id"] for r in self.db.query("select id from media")}
        mine = claims.held_here()
        cutoff = time.time() - older_than_seconds
        n = 0
        verdicts: dict[str, bool | None] = {}
        for p in self.dir.iterdir():
            if not p.is_file():
                continue
            temp = p.name.startswith(".tmp-")
            media_id = (p.name[len(".tmp-"):] if temp else p.name).split(".", 1)[0]
            if media_id in mine or (media_id in known and not temp):
                continue
            if media_id not in verdicts:
                verdicts[media_id] = claims.held_elsewhere(media_id)
            if verdicts[media_id] is True:
                continue
            try:
                if verdicts[media_id] is False or p.stat().st_mtime < cutoff:
                    p.unlink()
                    n += 1
            except FileNotFoundError:
                pass
        claims.remove_stale()
        return n
