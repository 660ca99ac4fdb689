"""`hub corpus export`: consented, verified recordings as a Kaldi data directory."""

from __future__ import annotations

import json
import os
import subprocess
import wave

from hub import feedback
from hub.voice import corpus, transcripts
from tests.voice.conftest import pcm_of, run_python


def add(ctx, wav, *, consent: bool, verified_text: str | None, lang: str = "km", phone: str = ""):
    row = ctx.media.prepare_audio(wav)
    fb = feedback.submit(ctx, {"category": "water", "lang": lang, "consent_share": consent,
                               "phone": phone, "name": "Sok Dara", "village": "ភូមិ ១"}, row)
    transcripts.enqueue_new(ctx)
    t = transcripts.for_feedback(ctx.db, fb["id"])
    if verified_text is not None:
        transcripts.correct(ctx, t["id"], verified_text, "clerk1")
    return fb


def read_table(path):
    return [line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_is_a_valid_kaldi_data_dir_with_only_consented_verified_items(ctx, english_wav, korean_wav,
                                                                             tmp_path):
    add(ctx, english_wav, consent=True, verified_text="អណ្តូង​ទឹក​ខូច", phone="012345678")
    add(ctx, korean_wav, consent=True, verified_text="ផ្លូវ​ខូច​ពេល​ភ្លៀង", phone="012345678")
    add(ctx, english_wav, consent=True, verified_text="សូម​ជួយ​សាលា​រៀន")
    add(ctx, english_wav, consent=False, verified_text="មិន​ចែករំលែក")  # no consent: never exported
    add(ctx, english_wav, consent=True, verified_text=None)  # not checked by a clerk
    out = tmp_path / "corpus"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATA_DIR"] = str(ctx.settings.data_dir)
    run = run_python(["-m", "hub.cli", "corpus", "export", str(out)], env)
    assert run.returncode == 0, run.stderr
    assert "exported 3 utterances from 2 speakers" in run.stdout

    assert corpus.check_data_dir(out) == []
    # Checked again independently: C-locale sorted, the same ids everywhere.
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        check = subprocess.run(["sort", "-c", str(out / name)], env={"LC_ALL": "C"},
                               capture_output=True, text=True)
        assert check.returncode == 0, (name, check.stderr)
    scp, text, utt2spk = (read_table(out / n) for n in ("wav.scp", "text", "utt2spk"))
    utts = [u for u, _ in scp]
    assert len(utts) == 3 and len(set(utts)) == 3
    assert [u for u, _ in text] == utts == [u for u, _ in utt2spk]
    spk2utt = {s: u.split() for s, u in read_table(out / "spk2utt")}
    assert sorted(u for us in spk2utt.values() for u in us) == sorted(utts)
    # Anonymous speakers: the same phone is one speaker; nothing personal leaves the hub.
    assert sorted(len(v) for v in spk2utt.values()) == [1, 2]
    everything = "".join(p.read_text(encoding="utf-8") for p in out.iterdir() if p.is_file())
    for secret in ("012345678", "Sok Dara", "ភូមិ", "មិន"):
        assert secret not in everything
    # Khmer words are separated by spaces for Kaldi; no zero-width spaces remain.
    words = dict(text)
    assert "\u200b" not in everything
    assert any(t.split() == ["អណ្តូង", "ទឹក", "ខូច"] for t in words.values()), words
    # Audio: 16 kHz mono copies of the stored masters.
    for _utt, path in scp:
        with wave.open(path) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        assert path.startswith(str(out))
    assert pcm_of(scp[0][1])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["utterances"] == 3 and manifest["speakers"] == 2
    assert sorted(i["utt"] for i in manifest["items"]) == utts


def test_check_finds_a_broken_data_dir(ctx, english_wav, tmp_path):
    add(ctx, english_wav, consent=True, verified_text="ទឹក")
    add(ctx, english_wav, consent=True, verified_text="ផ្លូវ")
    out = tmp_path / "c"
    corpus.export(ctx, out)
    assert corpus.check_data_dir(out) == []
    lines = (out / "text").read_text().splitlines()
    (out / "text").write_text("\n".join(reversed(lines)) + "\n")
    assert any("not sorted" in p for p in corpus.check_data_dir(out))
    (out / "text").write_text(lines[0] + "\n")
    assert any("same utterances" in p for p in corpus.check_data_dir(out))


def test_export_refuses_a_directory_with_files(ctx, tmp_path):
    import pytest

    from hub.core.errors import HubError

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(HubError):
        corpus.export(ctx, tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
