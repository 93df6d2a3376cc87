"""Times librosa, python_speech_features and kaldi-native-fbank on the same 60 s of
16 kHz speech the criterion bench uses (goforward_16k.wav repeated), one thread,
13 MFCCs at 25 ms / 10 ms. Prints milliseconds per 60 s and times real time.

    OMP_NUM_THREADS=1 .venv/bin/python crates/features/benches/reference_speed.py

Versions: crates/features/tests/reference/requirements.txt. Compare with
`cargo bench -p features --bench mfcc` run beside it.
"""

import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import soundfile as sf

CLIP = Path(__file__).resolve().parent.parent / "tests" / "audio" / "goforward_16k.wav"


def sixty_seconds():
    clip, sr = sf.read(CLIP, dtype="int16")
    assert sr == 16000
    return np.resize(clip, 60 * sr), sr


def best_of(function, repeats=7):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    samples, sr = sixty_seconds()
    y = samples.astype(np.float32) / 32768.0
    runs = {}
    try:
        import librosa
        runs[f"librosa {librosa.__version__} mfcc (512/400/160, 40 mels)"] = lambda: librosa.feature.mfcc(
            y=y, sr=sr, n_mfcc=13, n_fft=512, win_length=400, hop_length=160, n_mels=40)
    except ImportError:
        print("librosa not installed")
    try:
        import python_speech_features as psf
        runs["python_speech_features 0.6 mfcc"] = lambda: psf.mfcc(samples.astype(np.float64), samplerate=sr)
    except ImportError:
        print("python_speech_features not installed")
    try:
        import kaldi_native_fbank as knf

        def kaldi():
            opts = knf.MfccOptions()
            opts.frame_opts.dither = 0.0
            mfcc = knf.OnlineMfcc(opts)
            mfcc.accept_waveform(sr, samples.astype(np.float32).tolist())
            mfcc.input_finished()
            return [mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)]
        runs["kaldi-native-fbank mfcc"] = kaldi
    except ImportError:
        print("kaldi-native-fbank not installed")
    for name, function in runs.items():
        seconds = best_of(function)
        print(f"{name:50} {seconds * 1000:9.1f} ms per 60 s   {60 / seconds:8.0f}x real time")


if __name__ == "__main__":
    main()
