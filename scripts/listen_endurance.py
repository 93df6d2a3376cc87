"""Streams an hour of generated audio (digit strings said digit by digit, between stretches
of silence and quiet noise) through `experiment listen` as fast as it reads, and prints one
JSON line: the listener's resident memory after the first minute of audio and at the end,
the events it printed, and how many strings its final results read right.

    python3 scripts/listen_endurance.py runs/digit-strings-streaming [--minutes 60]

The digits are the single-digit recordings of the main job's corpus (split `test`,
`datasets/synthetic/manifest.csv`); the standard library only, so any Python 3 runs it.
"""

import argparse
import array
import csv
import json
import os
import random
import subprocess
import threading
import wave

# The corpus's rate; the listener resamples to the run's as the audio arrives.
RATE = 16000


def digits(manifest, split):
    """speaker → list of (label, 16 kHz samples) of its one-digit utterances."""
    root = os.path.dirname(manifest)
    by_speaker = {}
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] != split or len(row["label"]) != 1:
                continue
            with wave.open(os.path.join(root, row["path"])) as w:
                if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != (RATE, 2, 1):
                    continue
                samples = array.array("h", w.readframes(w.getnframes()))
            by_speaker.setdefault(row["speaker"], []).append((row["label"], samples))
    return by_speaker


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--binary", default="target/release/experiment")
    parser.add_argument("--manifest", default="datasets/synthetic/manifest.csv")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    voices = list(digits(args.manifest, "test").values())
    listener = subprocess.Popen(
        [args.binary, "listen", args.run, "--format", "s16le", "--rate", str(RATE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    finals = []
    reader = threading.Thread(
        target=lambda: finals.extend(
            json.loads(line)["text"] for line in listener.stdout
            if json.loads(line)["event"] == "final"))
    reader.start()
    total = int(args.minutes * 60 * RATE)
    written, said, first_minute = 0, [], None
    while written < total:
        pause = rng.uniform(2.0, 10.0)
        noise = rng.random() < 0.5
        gap = array.array("h", (int(rng.gauss(0, 30)) if noise else 0
                                for _ in range(int(pause * RATE))))
        voice = rng.choice(voices)
        string = array.array("h")
        text = ""
        for k in range(rng.randint(3, 5)):
            if k:
                string.extend([0] * int(rng.uniform(0.05, 0.4) * RATE))
            label, samples = rng.choice(voice)
            string.extend(samples)
            text += label
        said.append(text)
        for chunk in (gap, string):
            listener.stdin.write(chunk.tobytes())
            written += len(chunk)
        if first_minute is None and written >= 60 * RATE:
            listener.stdin.flush()
            first_minute = rss_mb(listener.pid)
    listener.stdin.flush()
    end = rss_mb(listener.pid)
    listener.stdin.close()
    reader.join()
    listener.wait()
    heard = "".join(finals)
    print(json.dumps({
        "audio_minutes": round(written / RATE / 60, 1),
        "strings": len(said),
        "finals": len(finals),
        "digits_said": sum(map(len, said)),
        "digits_heard": len(heard),
        "rss_mb_after_first_minute": round(first_minute, 1),
        "rss_mb_at_end": round(end, 1),
        "rss_growth": round(end / first_minute - 1, 4),
        "exit_status": listener.returncode,
    }))


if __name__ == "__main__":
    main()
