"""Times the peers of each `features` preset on one WAV file, one thread, the way their
users call them, and prints one JSON line per tool: the best of `--repeats` runs, in
seconds, for the features alone (from samples already in memory) and for reading the file
plus the features. `cargo bench -p features --bench peers` runs it beside our side (set
BENCH_PYTHON to a Python with `requirements.txt` installed); alone:

    python crates/features/benches/reference_speed.py --wav speech.wav --repeats 5

Settings, the same as the bench's presets (13 coefficients, 25 ms / 10 ms at 16 kHz):
- kaldi: `torchaudio.compliance.kaldi.mfcc` and kaldi-native-fbank's `OnlineMfcc` fed the
  whole array at once, dither 0 (the project's Kaldi preset);
- librosa: `librosa.feature.mfcc` and `torchaudio.transforms.MFCC` with n_fft 512, window
  400, hop 160, 40 Slaney mels, top_db 80;
- htk: `python_speech_features.mfcc` with its defaults (26 filters, n_fft 512).
Where the `speechrnn` package is installed (`pip install ./python`), it is timed too, on each
preset with the same settings: "speechrnn (Python)", our features called from Python
(`mfcc` on the samples of `speechrnn.load`; with the file, `mfcc_files` on one thread).
A tool that is not installed is left out (a line on stderr says so).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import soundfile as sf


def best_of(function, repeats):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def tools():
    """(preset, tool name, features(samples, sr), read(path) -> (samples, sr)[, file_features(path)])."""
    found = []
    read_int16 = lambda path: sf.read(path, dtype="int16")
    try:
        import torch
        import torchaudio
        import torchaudio.compliance.kaldi as kaldi
        import torchaudio.transforms as T

        torch.set_num_threads(1)
        tag = f"torchaudio {torchaudio.__version__.split('+')[0]}"

        def ta_kaldi(samples, sr):
            waveform = torch.from_numpy(samples.astype(np.float32)).unsqueeze(0)
            return kaldi.mfcc(waveform, sample_frequency=sr, dither=0.0).numpy()

        transforms = {}

        def ta_mfcc(samples, sr):
            if sr not in transforms:
                transforms[sr] = T.MFCC(sample_rate=sr, n_mfcc=13, melkwargs={
                    "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40,
                    "norm": "slaney", "mel_scale": "slaney"})
            waveform = torch.from_numpy(samples.astype(np.float32) / 32768.0)
            with torch.no_grad():
                return transforms[sr](waveform).numpy()

        found.append(("kaldi", f"{tag} compliance.kaldi.mfcc", ta_kaldi, read_int16))
        found.append(("librosa", f"{tag} transforms.MFCC", ta_mfcc, read_int16))
    except ImportError:
        print("torchaudio not installed", file=sys.stderr)
    try:
        import kaldi_native_fbank as knf

        def knf_mfcc(samples, sr):
            opts = knf.MfccOptions()
            opts.frame_opts.dither = 0.0
            opts.frame_opts.samp_freq = sr
            mfcc = knf.OnlineMfcc(opts)
            mfcc.accept_waveform(sr, samples.astype(np.float32))
            mfcc.input_finished()
            return np.array([mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)])

        found.append(("kaldi", "kaldi-native-fbank 1.23.0 OnlineMfcc", knf_mfcc, read_int16))
    except ImportError:
        print("kaldi-native-fbank not installed", file=sys.stderr)
    try:
        import librosa

        def librosa_mfcc(y, sr):
            return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=512, win_length=400,
                                        hop_length=160, n_mels=40)

        found.append(("librosa", f"librosa {librosa.__version__} feature.mfcc", librosa_mfcc,
                      lambda path: librosa.load(path, sr=None)))
    except ImportError:
        print("librosa not installed", file=sys.stderr)
    try:
        import python_speech_features as psf
        from scipy.io import wavfile

        def psf_mfcc(samples, sr):
            return psf.mfcc(samples, samplerate=sr)

        found.append(("htk", "python_speech_features 0.6 mfcc", psf_mfcc,
                      lambda path: wavfile.read(path)[::-1]))
    except ImportError:
        print("python_speech_features not installed", file=sys.stderr)
    try:
        import speechrnn

        def ours(preset, **overrides):
            return lambda y, sr: speechrnn.mfcc(y, sr, preset=preset, **overrides)

        librosa_settings = dict(n_mfcc=13, n_fft=512, win_length=400, hop_length=160, n_mels=40)
        def ours_file(preset, **overrides):
            return lambda path: speechrnn.mfcc_files([path], preset=preset, threads=1,
                                                     **overrides)[0]

        for preset, overrides in [("kaldi", {}), ("librosa", librosa_settings), ("htk", {})]:
            found.append((preset, "speechrnn (Python) mfcc", ours(preset, **overrides),
                          speechrnn.load, ours_file(preset, **overrides)))
    except ImportError:
        print("speechrnn (python/) not installed", file=sys.stderr)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wav", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="keep the tools whose preset contains this")
    args = parser.parse_args()
    for preset, name, features, read, *file_features in tools():
        if args.only not in preset:
            continue
        samples, sr = read(args.wav)
        features_s = best_of(lambda: features(samples, sr), args.repeats)

        def file_and_features():
            if file_features:  # a call that reads the file itself (ours streams it in blocks)
                return file_features[0](args.wav)
            samples, sr = read(args.wav)
            return features(samples, sr)

        file_s = best_of(file_and_features, args.repeats)
        shape = list(np.shape(features(samples, sr)))
        print(json.dumps({"preset": preset, "tool": name, "features_s": features_s,
                          "file_s": file_s, "shape": shape}), flush=True)


if __name__ == "__main__":
    main()
