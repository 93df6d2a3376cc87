#!/usr/bin/env python3
"""Builds a stand-in for Google Speech Commands in its exact folder layout, offline, from
the TTS engines of build_corpus.py (espeak-ng, flite, festival; see build_keywords.sh).

    python3 datasets/build_keywords.py --out datasets/keywords [--seed 7] [--jobs 2]

Output (under --out), as in speech_commands_v0.01:
  <word>/<speaker>_nohash_<take>.wav   16 kHz mono 16-bit, one second
  validation_list.txt, testing_list.txt
  _background_noise_/*.wav             a minute each of white, pink and brown noise (sox)
Words: v0.01's 30 (the ten command words and twenty others). Speakers are the engines'
voices, named by the first 8 hex digits of the SHA-1 of the voice's name; the two lists
take them by the reference's rule (`which_set` in TensorFlow's speech_commands example:
10% validation, 10% testing by a hash of the speaker), so no speaker is in two splits.
Deterministic for a given seed.
"""

import argparse
import hashlib
import re
import sys
from pathlib import Path

import build_corpus as corpus

COMMAND_WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
OTHER_WORDS = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
               "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1
NOISES = ("white", "pink", "brown")


def which_set(filename, validation_percentage=10, testing_percentage=10):
    """TensorFlow's speech_commands `input_data.which_set`, verbatim in effect."""
    base_name = Path(filename).name
    hash_name = re.sub(r"_nohash_.*$", "", base_name)
    hashed = hashlib.sha1(hash_name.encode()).hexdigest()
    percentage_hash = ((int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS))
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < testing_percentage + validation_percentage:
        return "testing"
    return "training"


def plan(rng):
    """(engine, voice, word, take, settings): every voice says every word three times, at
    three speeds (espeak-ng, each at a random pitch) or durations (flite, festival)."""
    jobs = []
    words = COMMAND_WORDS + OTHER_WORDS
    for accent in corpus.ESPEAK_ACCENTS:
        for variant in corpus.ESPEAK_VARIANTS:
            for word in words:
                for take, speed in enumerate((130, 160, 190)):
                    settings = {"word": word, "speed": speed, "pitch": rng.choice((35, 50, 65))}
                    jobs.append(("espeak-ng", f"{accent}+{variant}", word, take, settings))
    for voice in corpus.FLITE_VOICES:
        for word in words:
            for take, stretch in enumerate((0.85, 1.0, 1.15)):
                jobs.append(("flite", voice, word, take, {"word": word, "stretch": stretch, "f0": rng.choice((0, 1, 2))}))
    for voice in corpus.FESTIVAL_VOICES:
        for word in words:
            for take, stretch in enumerate((0.85, 1.0, 1.15)):
                jobs.append(("festival", voice, word, take, {"word": word, "stretch": stretch}))
    return jobs


def speaker_id(engine, voice):
    return hashlib.sha1(f"{engine}:{voice}".encode()).hexdigest()[:8]


def render(job, out, scratch):
    """One take, trimmed, 0.1 s of lead-in, cut or padded to exactly one second."""
    engine, voice, word, take, settings = job
    name = f"{speaker_id(engine, voice)}_nohash_{take}.wav"
    raw = scratch / f"{engine}_{voice}_{word}_{take}.wav".replace("+", "_")
    corpus.speak(engine, voice, settings, raw)
    target = out / word / name
    target.parent.mkdir(parents=True, exist_ok=True)
    trimmed = scratch / f"{raw.stem}_trimmed.wav"
    corpus.normalise(raw, trimmed)
    corpus.run(["sox", "-R", str(trimmed), "-t", "wavpcm", str(target), "pad", "0.1", "1", "trim", "0", "1"])
    raw.unlink(missing_ok=True)
    trimmed.unlink(missing_ok=True)
    return f"{word}/{name}"


def build(out, seed, jobs):
    work, files = corpus.build_fresh(out, seed, plan, render, jobs, "takes")
    lists = {"validation": [], "testing": []}
    for f in sorted(files):
        split = which_set(f)
        if split in lists:
            lists[split].append(f)
    for split, names in lists.items():
        (out / f"{split}_list.txt").write_text("".join(f"{n}\n" for n in names))
    noise = out / "_background_noise_"
    noise.mkdir()
    for colour in NOISES:
        corpus.run(["sox", "-R", "-n", "-r", "16000", "-c", "1", "-b", "16", "-t", "wavpcm",
                    str(noise / f"{colour}_noise.wav"), "synth", "60", f"{colour}noise", "vol", "0.3"])
    (out / "README.md").write_text(
        "A stand-in for Google Speech Commands v0.01 built by datasets/build_keywords.py from "
        "TTS voices (espeak-ng: GPL-3.0-or-later output; flite and festival: BSD-like "
        "licences) and sox noise. Same layout, words and list rule as the real corpus.\n")
    return files, lists


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("datasets/keywords"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    files, lists = build(args.out, args.seed, args.jobs)
    print(f"{len(files)} takes; {len(lists['validation'])} in validation_list.txt, "
          f"{len(lists['testing'])} in testing_list.txt", file=sys.stderr)


if __name__ == "__main__":
    main()
