"""Finds where each spoken digit lies in pocketsphinx's test recordings (forced alignment).

Debian's `pocketsphinx-testdata` holds a few human recordings of connected speech with
digits in it (a TIDIGITS-style digit string and spoken playing cards). This script aligns
each recording to its transcript with pocketsphinx's en-us model and writes the digits'
sample ranges to `datasets/real_segments.json`, which `build_corpus.py` uses to cut them
out. It is kept so that the JSON can be regenerated; the build itself does not need it.

    python3 -m venv /tmp/align && /tmp/align/bin/pip install pocketsphinx==5.1.1 numpy==2.4.6
    apt-get download pocketsphinx-testdata && dpkg-deb -x pocketsphinx-testdata_*.deb x
    /tmp/align/bin/python datasets/align_real.py x/usr/share/pocketsphinx/test/data
"""

import json
import sys
import wave
from importlib.metadata import version
from pathlib import Path

import numpy as np
from pocketsphinx import Decoder

# (file, speaker, transcript): the transcripts are the package's own (cards.transcription,
# the TIDIGITS file's name); only the digit words are kept.
RECORDINGS = [
    ("tidigits/dhd.2934z.raw", "dhd", "two nine three four zero"),
    ("cards/002.wav", "cards", "four queen of clubs"),
    ("cards/003.wav", "cards", "seven of clubs"),
    ("cards/004.wav", "cards", "five five"),
    ("cards/005.wav", "cards", "eight of spades four of clubs seven of hearts"),
]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RATE = 16000
FRAME = RATE // 100  # pocketsphinx reports segments in 10 ms frames


def samples(path):
    if path.suffix == ".raw":
        return np.fromfile(path, dtype="<i2")
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def main():
    data = Path(sys.argv[1])
    segments = []
    for name, speaker, text in RECORDINGS:
        decoder = Decoder(samprate=RATE, loglevel="ERROR")
        decoder.set_align_text(text)
        decoder.start_utt()
        decoder.process_raw(samples(data / name).tobytes(), full_utt=True)
        decoder.end_utt()
        words = [s for s in decoder.seg() if s.word in DIGITS]
        for index, s in enumerate(words):
            segments.append({
                "file": name,
                "speaker": speaker,
                "label": DIGITS.index(s.word),
                "index": index,
                "start": s.start_frame * FRAME,
                "end": (s.end_frame + 1) * FRAME,
            })
    out = Path(__file__).with_name("real_segments.json")
    out.write_text(json.dumps({"aligner": f"pocketsphinx {version('pocketsphinx')} en-us",
                               "rate": RATE, "segments": segments}, indent=1) + "\n")
    print(f"{len(segments)} digits written to {out}")


if __name__ == "__main__":
    main()
