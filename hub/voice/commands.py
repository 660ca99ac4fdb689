"""Spoken-input subcommands: transcribe, record, model, corpus."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from hub.core.context import open_context
from hub.core.daemon import load_settings
from hub.core.errors import HubError
from hub.migrations import MIGRATIONS
from hub.voice import checks as voice_checks
from hub.voice import sound as snd
from hub.voice.corpus import check_data_dir, export
from hub.voice.kiosk import free_mb, store_recording
from hub.voice.models import engine_for, install_model
from hub.voice.sound import read_pcm


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="print the transcript of an audio file (offline, Vosk)")
    p.add_argument("path", metavar="PATH", help="audio file in any format phones send")
    p.add_argument("--lang", help="language of the speech (default: kiosk_language)")
    p.add_argument("--grammar", metavar="WORDS",
                   help="comma-separated words: recognise only these (grammar mode)")
    p.add_argument("--json", action="store_true", help="print text, words with timings and confidence as JSON")
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("record", help="record from the kiosk microphone into a feedback item (a technician's test)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to record (default 5)")
    p.add_argument("--lang", help="language of the speech (default: kiosk_language)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("model", help="speech models per language")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    a = msub.add_parser("install", help="install a Vosk model from a directory, .zip or .tar.gz")
    a.add_argument("source", metavar="DIR_OR_ARCHIVE")
    a.add_argument("--lang", required=True, help="language code, e.g. km")
    a.set_defaults(func=cmd_model_install)
    a = msub.add_parser("list", help="installed models, and languages whose recordings wait for one")
    a.set_defaults(func=cmd_model_list)

    p = sub.add_parser("corpus", help="training material for speech models")
    csub = p.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)
    a = csub.add_parser("export", help="consented recordings with verified transcripts as a Kaldi data directory")
    a.add_argument("out", metavar="OUT", help="new or empty directory")
    a.add_argument("--lang", help="only this language")
    a.set_defaults(func=cmd_corpus_export)


def _settings(args):
    return load_settings(args)


def cmd_transcribe(args) -> int:
    settings = _settings(args)
    lang = args.lang or settings.kiosk_language
    path = Path(args.path)
    if not path.is_file():
        raise HubError(f"{path}: not found")
    pcm = read_pcm(path)
    engine = engine_for(settings, lang)
    grammar = [w.strip() for w in args.grammar.split(",") if w.strip()] if args.grammar else None
    started = time.monotonic()
    result = engine.transcribe_pcm(pcm, grammar=grammar)
    took = time.monotonic() - started
    if args.json:
        print(json.dumps({"text": result.text, "words": result.words, "lang": lang,
                          "model": engine.model_name, "audio_seconds": round(result.audio_seconds, 3),
                          "seconds": round(took, 3),
                          "real_time_factor": round(took / result.audio_seconds, 4)
                          if result.audio_seconds else None,
                          "confidence": result.confidence}, ensure_ascii=False))
    else:
        print(result.text)
    return 0


def cmd_record(args) -> int:
    settings = _settings(args)
    if args.seconds <= 0 or args.seconds > settings.max_record_seconds:
        raise HubError(f"--seconds must be between 0 and max_record_seconds ({settings.max_record_seconds})")
    ctx = open_context(settings, MIGRATIONS)
    if free_mb(settings.data_dir) < settings.min_free_mb:
        raise HubError(f"only {free_mb(settings.data_dir):.0f} MB free in {settings.data_dir}"
                       f" (min_free_mb = {settings.min_free_mb}): not recording")
    with snd.Sound(settings.audio_input_device, settings.kiosk_output_device) as sound:
        stream = sound.open_capture()
        try:
            print(f"recording {args.seconds:g} s from {settings.audio_input_device!r}...",
                  file=sys.stderr, flush=True)
            rec = snd.record_from(stream, max_seconds=args.seconds)
        finally:
            stream.stop_stream()
            stream.close()
    trimmed = snd.trim_silence(rec.pcm)
    speech = snd.speech_seconds(trimmed)
    if speech < snd.MIN_SPEECH_SECONDS:
        raise HubError(f"heard no speech in {rec.seconds:.1f} s from {settings.audio_input_device!r};"
                       " check the microphone and its level (alsamixer)")
    saved = store_recording(ctx, trimmed, args.lang or settings.kiosk_language)
    print(f"feedback {saved['id']} receipt {saved['receipt']}: recorded {rec.seconds:.2f} s,"
          f" kept {len(trimmed) / (snd.RATE * snd.SAMPLE_BYTES):.2f} s ({speech:.2f} s of speech)")
    return 0


def cmd_model_install(args) -> int:
    settings = _settings(args)
    path = install_model(Path(args.source), args.lang, settings)
    print(f"installed the speech model for {args.lang} at {path} -> {path.resolve()}")
    print("the transcriber picks it up at its next job; waiting recordings are transcribed")
    return 0


def cmd_model_list(args) -> int:
    settings = _settings(args)
    ctx = open_context(settings, MIGRATIONS)
    for level, message in voice_checks.check(settings, ctx.db):
        print(f"{level}: {message}")
    return 0


def cmd_corpus_export(args) -> int:
    ctx = open_context(_settings(args), MIGRATIONS)
    manifest = export(ctx, Path(args.out), args.lang)
    problems = check_data_dir(Path(args.out))
    if problems:
        raise HubError("exported data directory is not well formed: " + "; ".join(problems[:3]))
    print(f"exported {manifest['utterances']} utterances from {manifest['speakers']} speakers"
          f" ({manifest['seconds']:.0f} s) to {args.out}")
    return 0
