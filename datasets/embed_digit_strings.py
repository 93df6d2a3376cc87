#!/usr/bin/env python3
"""The embedded digit-string corpus (datasets/default_strings/), cut from a built one.

From datasets/digit_strings (bash datasets/build_digit_strings.sh), keeps a few whole strings
of each split: one string from each of 40 training voices, one from each of 11 validation
voices and 12 strings across the 6 test voices, plus every `real` recording. The choice is
drawn from a fixed seed. Each kept file is resampled to 8 kHz mono 16-bit by sox. The
splits stay speaker-disjoint, as in the full corpus. The result is about 1.5 MB.

    python3 datasets/embed_digit_strings.py datasets/digit_strings datasets/default_strings
"""

import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile

# Strings kept per split: (voices drawn, strings per voice); None keeps every recording.
KEEP = {"train": (40, 1), "valid": (11, 1), "test": (6, 2), "real": None}
RATE = 8000


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    source, out = (os.path.abspath(p) for p in sys.argv[1:])
    with open(os.path.join(source, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    rng = random.Random(7)
    chosen = []
    for split, keep in KEEP.items():
        here = [r for r in rows if r["split"] == split]
        if keep is None:
            chosen.extend(here)
            continue
        voices, per_voice = keep
        speakers = sorted({r["speaker"] for r in here})
        for speaker in sorted(rng.sample(speakers, min(voices, len(speakers)))):
            theirs = [r for r in here if r["speaker"] == speaker]
            chosen.extend(rng.sample(theirs, min(per_voice, len(theirs))))
    staging = tempfile.mkdtemp(prefix=".default_strings-", dir=os.path.dirname(out))
    try:
        for row in chosen:
            target = os.path.join(staging, row["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            subprocess.run(
                ["sox", os.path.join(source, row["path"]), "-r", str(RATE), "-c", "1",
                 "-b", "16", target],
                check=True,
            )
        with open(os.path.join(staging, "manifest.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(chosen)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    counts = {s: sum(1 for r in chosen if r["split"] == s) for s in KEEP}
    print(f"{out}/manifest.csv: {counts}")


if __name__ == "__main__":
    main()
