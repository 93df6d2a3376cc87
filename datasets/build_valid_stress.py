#!/usr/bin/env python3
"""Builds valid_stress: every utterance of the corpus's valid split under six conditions that
training never sees, as a second validation set that is not saturated.

    python3 datasets/build_valid_stress.py [--corpus datasets/synthetic] [--jobs 2]
    experiment eval runs/<run> --manifest datasets/synthetic/valid_stress.csv --split valid_stress

The valid split's voices score 100% with every recogniser variant worth comparing, so it
no longer ranks them. These conditions lie outside the training augmentation (speed
0.9/1.1, light reverb, telephone band, white noise at 20 and 10 dB, VTLP warps 0.85-1.15,
time masks): tempo 0.8 and 1.25 (pitch kept), pitch -300 and +300 cents (formants move
with it), a large reverberant room, and pink noise at 5 dB SNR. The same voices as valid,
so nothing from test or real enters. Deterministic (sox -R).
Output: wav/valid_stress/<condition>/<the valid file's path> and valid_stress.csv (the
manifest's columns, split "valid_stress").
"""

import argparse
import csv
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_corpus import mix_noise, normalise  # noqa: E402

# Each condition renders source → target.
CONDITIONS = {
    "tempo0.8": lambda source, target: normalise(source, target, ("tempo", "0.8")),
    "tempo1.25": lambda source, target: normalise(source, target, ("tempo", "1.25")),
    "pitch-300": lambda source, target: normalise(source, target, ("pitch", "-300")),
    "pitch+300": lambda source, target: normalise(source, target, ("pitch", "300")),
    "room": lambda source, target: normalise(source, target, ("reverb", "70", "50", "100")),
    "pink5dB": lambda source, target: mix_noise(source, target, 5, "pinknoise"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("datasets/synthetic"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with open(args.corpus / "manifest.csv", newline="") as f:
        valid = [row for row in csv.DictReader(f) if row["split"] == "valid"]
    if not valid:
        sys.exit(f"build_valid_stress: no valid rows in {args.corpus / 'manifest.csv'}")
    jobs = [(condition, row) for condition in CONDITIONS for row in valid]

    def make(job):
        condition, row = job
        relative = Path("wav/valid_stress") / condition / row["path"]
        CONDITIONS[condition](args.corpus / row["path"], args.corpus / relative)
        return {**row, "path": relative.as_posix(), "split": "valid_stress"}

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(make, jobs))
    manifest = args.corpus / "valid_stress.csv"
    partial = manifest.with_suffix(".csv.tmp")
    with open(partial, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(valid[0]))
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(manifest)
    print(f"build_valid_stress: {len(rows)} utterances ({len(valid)} valid x {len(CONDITIONS)} conditions) "
          f"in {manifest}", file=sys.stderr)


if __name__ == "__main__":
    main()
