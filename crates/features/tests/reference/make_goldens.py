"""Writes the golden outputs the `features` crate is tested against.

Each case is one call of a reference library (Kaldi's feature code through
kaldi-native-fbank, librosa, python_speech_features, scipy) on one input. The
output goes to `golden/<case>.npy`; `goldens.json` records, for every case, the
library and its version, the exact call, the options our crate must be given to
reproduce it, the input file and its sha256, and the tolerance.

Run from the repository root with the pinned versions in requirements.txt:

    python -m venv .venv && .venv/bin/pip install -r crates/features/tests/reference/requirements.txt
    .venv/bin/python crates/features/tests/reference/make_goldens.py

It also writes the synthetic edge-case inputs (silence, ±1 LSB noise, clipping,
shorter than a frame, odd length) into `tests/audio/`, deterministically.
"""

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import kaldi_native_fbank as knf
import librosa
import numpy as np
import python_speech_features as psf
import scipy.fft
import scipy.signal
import soundfile as sf

HERE = Path(__file__).resolve().parent
AUDIO = HERE.parent / "audio"
GOLDEN = HERE / "golden"

# Tolerances |ours - ref| <= atol + rtol * |ref|, from float32-vs-float64 runs of
# the references themselves (../../../../shared/notes/mfcc-references.md).
RTOL = 1e-4
ATOL = {
    "kaldi_mfcc": 1e-2,
    "kaldi_fbank": 3e-3,
    "librosa": 1e-3,
    "psf": 1e-3,
    "piece": 1e-6,
}

cases = []


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save(name, array, *, kind, library, call, options, atol, input=None):
    GOLDEN.mkdir(exist_ok=True)
    array = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    np.save(GOLDEN / f"{name}.npy", array)
    case = {
        "name": name,
        "kind": kind,
        "library": library,
        "version": version(
            {"kaldi": "kaldi-native-fbank", "librosa": "librosa",
             "psf": "python_speech_features", "scipy": "scipy"}[library]
        ),
        "call": call,
        "options": options,
        "output": f"golden/{name}.npy",
        "shape": list(array.shape),
        "atol": atol,
        "rtol": RTOL,
    }
    if input is not None:
        case["input"] = f"audio/{input}"
        case["input_sha256"] = sha256(AUDIO / input)
    cases.append(case)


def write_edge_inputs():
    rng = np.random.default_rng(20261123)
    speech, sr = sf.read(AUDIO / "goforward_16k.wav", dtype="int16")
    assert sr == 16000
    inputs = {
        "silence_16k.wav": np.zeros(16000, dtype=np.int16),
        "lsb_noise_16k.wav": rng.integers(-1, 2, size=8000).astype(np.int16),
        "clipped_16k.wav": np.clip(speech[:16000].astype(np.int64) * 8, -32768, 32767).astype(np.int16),
        "short_16k.wav": speech[20000:20300],
        "odd_16k.wav": speech[:16001],
    }
    for name, samples in inputs.items():
        sf.write(AUDIO / name, samples, 16000, subtype="PCM_16")


def read_int16(name):
    samples, sr = sf.read(AUDIO / name, dtype="int16")
    return samples, sr


def framing_for(sr):
    """25 ms / 10 ms framing in samples, and the power-of-two FFT size Kaldi picks."""
    win = int(round(0.025 * sr))
    hop = int(round(0.010 * sr))
    n_fft = 1 << (win - 1).bit_length()
    return win, hop, n_fft


def run_online(extractor, sr, samples, width):
    """All frames of one of kaldi-native-fbank's online extractors over the whole input."""
    extractor.accept_waveform(sr, samples.astype(np.float32).tolist())
    extractor.input_finished()
    frames = [extractor.get_frame(i) for i in range(extractor.num_frames_ready)]
    return np.array(frames).reshape(-1, width)


def kaldi_cases(name, samples, sr):
    stem = name.removesuffix(".wav")
    frame = knf.FrameExtractionOptions()
    frame.samp_freq = sr
    frame.dither = 0.0

    opts = knf.MfccOptions()
    opts.frame_opts = frame
    frames = run_online(knf.OnlineMfcc(opts), sr, samples, 13)
    save(f"kaldi_mfcc_{stem}", frames, kind="mfcc", library="kaldi",
         call="knf.OnlineMfcc(MfccOptions(frame_opts.samp_freq=sr, frame_opts.dither=0)) on int16 values",
         options={"preset": "kaldi"}, atol=ATOL["kaldi_mfcc"], input=name)

    fopts = knf.FbankOptions()
    fopts.frame_opts = frame
    frames = run_online(knf.OnlineFbank(fopts), sr, samples, 23)
    save(f"kaldi_fbank_{stem}", frames, kind="log_mel", library="kaldi",
         call="knf.OnlineFbank(FbankOptions(frame_opts.samp_freq=sr, frame_opts.dither=0)) on int16 values",
         options={"preset": "kaldi"}, atol=ATOL["kaldi_fbank"], input=name)
    return frames


def librosa_cases(name, samples, sr):
    stem = name.removesuffix(".wav")
    win, hop, n_fft = framing_for(sr)
    y = samples.astype(np.float32) / 32768.0
    ours = {"preset": "librosa", "n_fft": n_fft, "win_length": win, "hop_length": hop,
            "n_mels": 40, "n_mfcc": 13}
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=n_fft, win_length=win,
                                hop_length=hop, n_mels=40)
    save(f"librosa_mfcc_{stem}", mfcc.T, kind="mfcc", library="librosa",
         call=f"librosa.feature.mfcc(y=int16/32768 as float32, sr={sr}, n_mfcc=13, n_fft={n_fft}, "
              f"win_length={win}, hop_length={hop}, n_mels=40)",
         options=ours, atol=ATOL["librosa"], input=name)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, win_length=win,
                                         hop_length=hop, n_mels=40)
    save(f"librosa_logmel_{stem}", librosa.power_to_db(mel).T, kind="log_mel", library="librosa",
         call=f"librosa.power_to_db(librosa.feature.melspectrogram(y, sr={sr}, n_fft={n_fft}, "
              f"win_length={win}, hop_length={hop}, n_mels=40))",
         options=ours, atol=ATOL["librosa"], input=name)


def psf_cases(name, samples, sr):
    stem = name.removesuffix(".wav")
    win, _, _ = framing_for(sr)
    n_fft = max(512, 1 << (win - 1).bit_length())
    signal = samples.astype(np.float64)
    mfcc = psf.mfcc(signal, samplerate=sr, nfft=n_fft)
    save(f"psf_mfcc_{stem}", mfcc, kind="mfcc", library="psf",
         call=f"python_speech_features.mfcc(int16 values as float64, samplerate={sr}, nfft={n_fft})",
         options={"preset": "htk", "n_fft": n_fft}, atol=ATOL["psf"], input=name)
    logfbank = psf.logfbank(signal, samplerate=sr, nfft=n_fft)
    save(f"psf_logfbank_{stem}", logfbank, kind="log_mel", library="psf",
         call=f"python_speech_features.logfbank(int16 values as float64, samplerate={sr}, nfft={n_fft})",
         options={"preset": "htk", "n_fft": n_fft}, atol=ATOL["psf"], input=name)
    return mfcc


def piece_cases():
    n = 400
    for window, periodic in [("hann", True), ("hann", False), ("hamming", True),
                             ("hamming", False), ("blackman", True), ("blackman", False)]:
        w = scipy.signal.get_window(window, n, fftbins=periodic)
        form = "periodic" if periodic else "symmetric"
        save(f"window_{window}_{form}_{n}", w, kind="window", library="scipy",
             call=f"scipy.signal.get_window('{window}', {n}, fftbins={periodic})",
             options={"window": window, "periodic": periodic, "length": n}, atol=ATOL["piece"])
    frame = knf.FrameExtractionOptions()
    frame.window_type = "povey"
    save(f"window_povey_{n}", knf.FeatureWindowFunction(frame).window, kind="window",
         library="kaldi", call="knf.FeatureWindowFunction(window_type='povey', 25 ms at 16 kHz).window",
         options={"window": "povey", "periodic": False, "length": n}, atol=ATOL["piece"])

    save("mel_librosa_slaney_16k_512_40", librosa.filters.mel(sr=16000, n_fft=512, n_mels=40),
         kind="mel_matrix", library="librosa", call="librosa.filters.mel(sr=16000, n_fft=512, n_mels=40)",
         options={"preset": "librosa", "sample_rate": 16000, "n_fft": 512, "n_mels": 40},
         atol=ATOL["piece"])
    save("mel_librosa_htk_16k_512_40",
         librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, htk=True, norm=None, fmin=100, fmax=7000),
         kind="mel_matrix", library="librosa",
         call="librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, htk=True, norm=None, fmin=100, fmax=7000)",
         options={"preset": "librosa", "sample_rate": 16000, "n_fft": 512, "n_mels": 40,
                  "mel_scale": "htk", "mel_norm": "none", "fmin": 100.0, "fmax": 7000.0},
         atol=ATOL["piece"])
    mel_opts = knf.MelBanksOptions()
    mel_opts.num_bins = 23
    banks = knf.MelBanks(mel_opts, knf.FrameExtractionOptions())
    save("mel_kaldi_16k_512_23", np.asarray(banks.get_matrix()), kind="mel_matrix", library="kaldi",
         call="knf.MelBanks(MelBanksOptions(num_bins=23), FrameExtractionOptions()).get_matrix()",
         options={"preset": "kaldi", "sample_rate": 16000, "n_fft": 512, "n_mels": 23},
         atol=ATOL["piece"])
    # VTLN: Kaldi's piecewise-linear warp of the band edges (vtln_low 100, vtln_high -500).
    for rate, warp in ((8000, 0.9), (8000, 1.1), (16000, 0.85), (16000, 1.2)):
        frame_opts = knf.FrameExtractionOptions()
        frame_opts.samp_freq = rate
        banks = knf.MelBanks(mel_opts, frame_opts, warp)
        n_fft = 256 if rate == 8000 else 512
        save(f"mel_kaldi_vtln{warp}_{rate // 1000}k_{n_fft}_23", np.asarray(banks.get_matrix()),
             kind="mel_matrix", library="kaldi",
             call=f"knf.MelBanks(MelBanksOptions(num_bins=23), FrameExtractionOptions(samp_freq={rate}), "
                  f"vtln_warp_factor={warp}).get_matrix()",
             options={"preset": "kaldi", "sample_rate": rate, "n_fft": n_fft, "n_mels": 23,
                      "vtln_warp": warp},
             atol=ATOL["piece"])
    save("mel_psf_16k_512_26", psf.get_filterbanks(26, 512, 16000), kind="mel_matrix", library="psf",
         call="python_speech_features.get_filterbanks(nfilt=26, nfft=512, samplerate=16000)",
         options={"preset": "htk", "sample_rate": 16000, "n_fft": 512, "n_mels": 26},
         atol=ATOL["piece"])
    save("dct_ortho_13x40", scipy.fft.dct(np.eye(40), type=2, norm="ortho", axis=0)[:13],
         kind="dct", library="scipy", call="scipy.fft.dct(np.eye(40), type=2, norm='ortho', axis=0)[:13]",
         options={"n_mfcc": 13, "n_mels": 40}, atol=ATOL["piece"])

    samples, sr = read_int16("goforward_16k.wav")
    y = samples.astype(np.float32) / 32768.0
    power = np.abs(librosa.stft(y, n_fft=512, hop_length=160, win_length=400)) ** 2
    save("power_librosa_goforward_16k", power.T[100:105], kind="power_spectrum", library="librosa",
         call="(np.abs(librosa.stft(y, n_fft=512, hop_length=160, win_length=400)) ** 2).T[100:105]",
         options={"preset": "librosa", "n_fft": 512, "win_length": 400, "hop_length": 160,
                  "first_frame": 100}, atol=ATOL["librosa"], input="goforward_16k.wav")


def post_cases(kaldi_mfcc, psf_mfcc):
    deltas = knf.compute_deltas(knf.DeltaOptions(), kaldi_mfcc.astype(np.float32))
    save("kaldi_deltas_goforward_16k", deltas, kind="deltas", library="kaldi",
         call="knf.compute_deltas(DeltaOptions(order=2, window=2), kaldi_mfcc_goforward_16k)",
         options={"source": "kaldi_mfcc_goforward_16k", "order": 2, "window": 2},
         atol=ATOL["piece"] * 100)
    save("psf_delta_goforward_16k", psf.delta(psf_mfcc, 2), kind="deltas", library="psf",
         call="python_speech_features.delta(psf_mfcc_goforward_16k, N=2)",
         options={"source": "psf_mfcc_goforward_16k", "order": 1, "window": 2},
         atol=ATOL["piece"] * 100)
    for norm_vars in [False, True]:
        stats = knf.compute_cmvn_stats(kaldi_mfcc.astype(np.float32))
        opts = knf.CmvnOptions()
        opts.norm_vars = norm_vars
        normed = knf.apply_cmvn(stats, opts, kaldi_mfcc.astype(np.float32))
        label = "mean_variance" if norm_vars else "mean"
        save(f"kaldi_cmvn_{label}_goforward_16k", normed, kind="cmvn", library="kaldi",
             call=f"knf.apply_cmvn(knf.compute_cmvn_stats(feats), CmvnOptions(norm_vars={norm_vars}), feats)",
             options={"source": "kaldi_mfcc_goforward_16k", "variance": norm_vars},
             atol=ATOL["piece"] * 100)


def main():
    write_edge_inputs()
    kaldi_mfcc = psf_mfcc = None
    for name in ["goforward_16k.wav", "digit7_8k.wav", "goforward_44k.wav", "silence_16k.wav",
                 "lsb_noise_16k.wav", "clipped_16k.wav", "short_16k.wav", "odd_16k.wav"]:
        samples, sr = read_int16(name)
        kaldi_cases(name, samples, sr)
        librosa_cases(name, samples, sr)
        psf_cases(name, samples, sr)
    samples, sr = read_int16("goforward_16k.wav")
    y = samples.astype(np.float32) / 32768.0
    save("librosa_mfcc_defaults_goforward_16k", librosa.feature.mfcc(y=y, sr=sr).T, kind="mfcc",
         library="librosa", call="librosa.feature.mfcc(y=int16/32768 as float32, sr=16000)",
         options={"preset": "librosa"}, atol=ATOL["librosa"], input="goforward_16k.wav")
    kaldi_mfcc = np.load(GOLDEN / "kaldi_mfcc_goforward_16k.npy")
    psf_mfcc = psf.mfcc(samples.astype(np.float64), samplerate=sr)
    piece_cases()
    post_cases(kaldi_mfcc, psf_mfcc)
    (HERE / "goldens.json").write_text(json.dumps(cases, indent=1) + "\n")
    print(f"wrote {len(cases)} golden cases")


if __name__ == "__main__":
    main()
