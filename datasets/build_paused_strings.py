#!/usr/bin/env python3
"""Builds digit strings said digit by digit, with pauses, from the isolated digits of the
synthetic corpus (datasets/synthetic, `bash datasets/build_corpus.sh`): the way people read
out a PIN or a phone number. Standard library only, deterministic for a given --seed.

    python3 datasets/build_paused_strings.py [--synthetic datasets/synthetic]
        [--strings datasets/digit_strings] [--out datasets/paused_strings] [--seed 7]
        [--rate 16000] [--per-voice 15] [--per-real-speaker 40]

Each string is one speaker's recordings of single digits (the original renditions, not the
augmented copies), joined with 50–400 ms pauses, with 100–400 ms before the first digit and
after the last. Half the strings (a seeded draw) pause in digital silence; the other half lie
on a bed of white noise at −72 to −54 dBFS RMS, added under the speech too, as a quiet room.
The digits follow build_digit_strings.py's draws (1–7 digits: random, phone-number groups,
repeats). Every speaker keeps the split of the synthetic corpus, which build_corpus.py and
build_digit_strings.py give the same voice, so no voice is in two splits:
  train, valid     15 strings per voice (--per-voice);
  test_paused      15 strings per test voice (held-out TTS voices, paused form);
  real_joined      40 strings per real speaker (--per-real-speaker) of isolated digits (Allison, and the digits
                   cut from pocketsphinx's dhd and cards recordings), 3–6 digits each: a
                   report split, never trained on.
Output (under --out):
  wav/<split>/<index>.wav   16 kHz (--rate) mono 16-bit
  manifest.csv      the paused strings (path,label,speaker,engine,split,source,licence)
  combined.csv      the fluent strings of --strings and the paused ones, one corpus:
                    train and valid hold both forms; test and real are the fluent forms,
                    test_paused and real_joined the paused ones.
"""

import argparse
import csv
import os
import random
import struct
import subprocess
import wave
from collections import defaultdict
from pathlib import Path

import build_digit_strings as strings

PAUSE = (0.05, 0.4)
EDGE = (0.1, 0.4)
NOISE_DBFS = (-72.0, -54.0)
REAL_DIGITS = (3, 6)
SPLIT_NAMES = {"train": "train", "valid": "valid", "test": "test_paused", "real": "real_joined"}


def read_clip(path, rate):
    """The clip's samples as ints at `rate` (sox converts other rates)."""
    with wave.open(str(path)) as w:
        if w.getframerate() == rate and w.getnchannels() == 1 and w.getsampwidth() == 2:
            frames = w.readframes(w.getnframes())
            return list(struct.unpack(f"<{len(frames) // 2}h", frames))
    raw = subprocess.run(
        ["sox", "-R", str(path), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed", "-t", "raw", "-"],
        check=True, capture_output=True).stdout
    return list(struct.unpack(f"<{len(raw) // 2}h", raw))


def clips_by_speaker(synthetic):
    """Each speaker's original (not augmented) single-digit clips: (split, {digit: [paths]})."""
    speakers = {}
    with open(synthetic / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["path"].endswith("_aug.wav") or not row["label"].isdigit():
                continue
            split, by_digit = speakers.setdefault(row["speaker"], (row["split"], defaultdict(list)))
            by_digit[int(row["label"])].append(row)
    return speakers


def join(rng, clips, cache, root, rate):
    """One string's samples: each clip, the pauses, and (for half) a noise bed."""
    silence = lambda seconds: [0] * round(seconds * rate)
    samples = silence(rng.uniform(*EDGE))
    for k, row in enumerate(clips):
        if k > 0:
            samples += silence(rng.uniform(*PAUSE))
        if row["path"] not in cache:
            cache[row["path"]] = read_clip(root / row["path"], rate)
        samples += cache[row["path"]]
    samples += silence(rng.uniform(*EDGE))
    if rng.random() < 0.5:
        sigma = 32768 * 10 ** (rng.uniform(*NOISE_DBFS) / 20)
        samples = [s + rng.gauss(0.0, sigma) for s in samples]
    return [max(-32768, min(32767, round(s))) for s in samples]


def write_wav(path, samples, rate):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    tmp.replace(path)


def plan(rng, speakers, per_voice, per_real_speaker):
    """(speaker, split, digits) for every string, in a fixed order."""
    jobs = []
    for speaker in sorted(speakers):
        split, by_digit = speakers[speaker]
        if split == "real":
            have = sorted(by_digit)
            for _ in range(per_real_speaker):
                digits = [rng.choice(have) for _ in range(rng.randint(*REAL_DIGITS))]
                jobs.append((speaker, split, digits))
            continue
        for _ in range(per_voice):
            label, _ = strings.digit_string(rng)
            digits = [int(d) for d in label]
            if all(d in by_digit for d in digits):
                jobs.append((speaker, split, digits))
    return jobs


def build(args):
    rng = random.Random(args.seed)
    speakers = clips_by_speaker(args.synthetic)
    rows, cache = [], {}
    for index, (speaker, split, digits) in enumerate(plan(rng, speakers, args.per_voice, args.per_real_speaker)):
        by_digit = speakers[speaker][1]
        clips = [rng.choice(by_digit[d]) for d in digits]
        name = SPLIT_NAMES[split]
        path = Path("wav") / name / f"{index}.wav"
        samples = join(rng, clips, cache, args.synthetic, args.rate)
        write_wav(args.out / path, samples, args.rate)
        rows.append({"path": str(path), "label": "".join(map(str, digits)), "speaker": speaker,
                     "engine": clips[0]["engine"], "split": name,
                     "source": "joined from " + ", ".join(sorted({c["source"] for c in clips})),
                     "licence": clips[0]["licence"]})
    return rows


def write_manifest(path, rows):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "speaker", "engine", "split", "source", "licence"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=Path, default=Path("datasets/synthetic"))
    parser.add_argument("--strings", type=Path, default=Path("datasets/digit_strings"))
    parser.add_argument("--out", type=Path, default=Path("datasets/paused_strings"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rate", type=int, default=16000, help="sample rate of the output")
    parser.add_argument("--per-voice", type=int, default=15, help="strings per TTS voice")
    parser.add_argument("--per-real-speaker", type=int, default=40, help="strings per real speaker")
    args = parser.parse_args()
    rows = build(args)
    args.out.mkdir(parents=True, exist_ok=True)
    write_manifest(args.out / "manifest.csv", rows)
    fluent = list(csv.DictReader(open(args.strings / "manifest.csv", newline="")))
    relative = os.path.relpath(args.strings, args.out)
    for row in fluent:
        row["path"] = os.path.join(relative, row["path"])
    write_manifest(args.out / "combined.csv", fluent + rows)
    counts = defaultdict(int)
    for row in rows:
        counts[row["split"]] += 1
    print(f"{len(rows)} paused strings in {args.out}: {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
