#!/usr/bin/env python3
"""A larger corpus from a built one, for measuring training at scale.

Each training utterance of MANIFEST is written COPIES times, each copy after its own stretch
of leading silence (0-50 ms, so its frames fall at other places in the signal) and at its
own gain (-6 to +6 dB), with a new speaker name per copy. The other splits are kept as they
are and point to the original files. The standard library only; the copies are drawn from
a fixed seed, so the same command always writes the same files.

    python3 datasets/replicate_corpus.py datasets/synthetic/manifest.csv datasets/synthetic-x15 15

writes datasets/synthetic-x15/manifest.csv and datasets/synthetic-x15/wav/ (7,037 x 15 =
105,555 training utterances from the synthetic corpus, about 1.6 GB).
"""

import array
import csv
import os
import random
import sys
import wave


def copy_with(source, target, silence_s, gain_db):
    with wave.open(source, "rb") as w:
        params = w.getparams()
        frames = w.readframes(params.nframes)
    if params.sampwidth != 2:
        raise SystemExit(f"{source}: only 16-bit PCM is replicated")
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()
    scale = 10.0 ** (gain_db / 20.0)
    scaled = array.array(
        "h", (max(-32768, min(32767, round(s * scale))) for s in samples)
    )
    lead = array.array("h", [0] * (int(silence_s * params.framerate) * params.nchannels))
    out = lead + scaled
    if sys.byteorder == "big":
        out.byteswap()
    partial = target + ".tmp"
    with wave.open(partial, "wb") as w:
        w.setnchannels(params.nchannels)
        w.setsampwidth(2)
        w.setframerate(params.framerate)
        w.writeframes(out.tobytes())
    os.replace(partial, target)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    manifest, out_dir, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    root = os.path.dirname(os.path.abspath(manifest))
    out_dir = os.path.abspath(out_dir)
    rng = random.Random(1997)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    written = []
    for index, row in enumerate(rows):
        source = os.path.join(root, row["path"])
        if row["split"] != "train":
            written.append({**row, "path": os.path.relpath(source, out_dir)})
            continue
        for copy in range(copies):
            name = os.path.join("wav", f"{index:06d}", f"{copy:02d}.wav")
            target = os.path.join(out_dir, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            silence, gain = rng.uniform(0.0, 0.05), rng.uniform(-6.0, 6.0)
            if not os.path.exists(target):
                copy_with(source, target, silence, gain)
            written.append({**row, "path": name, "speaker": f"{row['speaker']}#{copy}"})
    fields = list(rows[0].keys())
    partial = os.path.join(out_dir, "manifest.csv.tmp")
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(written)
    os.replace(partial, os.path.join(out_dir, "manifest.csv"))
    train = sum(1 for r in written if r["split"] == "train")
    print(f"{out_dir}/manifest.csv: {train} training utterances, {len(written) - train} others")


if __name__ == "__main__":
    main()
