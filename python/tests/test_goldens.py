"""The features crate's golden cases (crates/features/tests/reference/goldens.json: Kaldi through
kaldi-native-fbank, librosa, python_speech_features), called from Python with the same
tolerances as the Rust tests; and the same libraries called live on signals of their own."""

import json
import pathlib

import numpy as np
import pytest

import speechrnn

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "crates/features/tests/reference"
CASES = [c for c in json.loads((REFERENCE / "goldens.json").read_text())
         if c["kind"] in ("mfcc", "log_mel")]


def overrides(options):
    """The case's options as speechrnn's keyword overrides (librosa's names)."""
    out = {k: options[k] for k in ("n_fft", "win_length", "hop_length", "n_mels", "n_mfcc",
                                   "fmin", "fmax") if k in options}
    if options.get("mel_scale") == "htk":
        out["htk"] = True
    if options.get("mel_norm") == "none":
        out["norm"] = None
    if "vtln_warp" in options:
        out["vtln_warp"] = options["vtln_warp"]
    return out


def assert_within(ours, golden, atol, rtol):
    assert ours.shape == golden.shape
    excess = np.abs(ours.astype(np.float64) - golden) / (atol + rtol * np.abs(golden))
    assert np.all(excess <= 1.0), f"worst {excess.max():.3g} at {np.unravel_index(excess.argmax(), excess.shape)}"


def test_every_mfcc_and_log_mel_case_is_called():
    assert len(CASES) >= 45
    assert {c["library"] for c in CASES} == {"kaldi", "librosa", "psf"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(case):
    y, file_rate = speechrnn.load(REFERENCE.parent / case["input"])
    sr = case["options"].get("sample_rate", file_rate)
    compute = speechrnn.mfcc if case["kind"] == "mfcc" else speechrnn.log_mel
    ours = compute(y, sr, preset=case["options"]["preset"], **overrides(case["options"]))
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    golden = np.load(REFERENCE / case["output"])
    assert_within(ours, golden, case["atol"], case["rtol"])


def test_load_equals_soundfile():
    soundfile = pytest.importorskip("soundfile")
    for name in ("goforward_16k.wav", "digit7_stereo.wav", "digit7_s24_extensible.wav"):
        path = REFERENCE.parent / "audio" / name
        ours, sr = speechrnn.load(path, mono=False)
        theirs, their_sr = soundfile.read(path, dtype="float32", always_2d=True)
        assert sr == their_sr
        np.testing.assert_array_equal(ours, theirs.T)
        mono, _ = speechrnn.load(path)
        np.testing.assert_allclose(mono, theirs.mean(axis=1), atol=1e-7)


def noise(seconds, sr, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * sr)) * 0.1).astype(np.float32)


def test_librosa_called_live():
    librosa = pytest.importorskip("librosa")
    y = noise(1.3, 16000, 1)
    theirs = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=13, n_fft=512, win_length=400,
                                  hop_length=160, n_mels=40).T
    ours = speechrnn.mfcc(y, 16000, preset="librosa", n_mfcc=13, n_fft=512, win_length=400,
                          hop_length=160, n_mels=40)
    assert_within(ours, theirs, 1e-3, 1e-4)


def test_kaldi_native_fbank_called_live():
    knf = pytest.importorskip("kaldi_native_fbank")
    y = noise(1.3, 16000, 2)
    opts = knf.MfccOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    mfcc = knf.OnlineMfcc(opts)
    mfcc.accept_waveform(16000, y * 32768)
    mfcc.input_finished()
    theirs = np.array([mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)])
    assert_within(speechrnn.mfcc(y, 16000), theirs, 1e-2, 1e-4)


def test_python_speech_features_called_live():
    psf = pytest.importorskip("python_speech_features")
    y = noise(1.3, 16000, 3)
    theirs = psf.logfbank(y.astype(np.float64) * 32768, samplerate=16000, nfft=512)
    ours = speechrnn.log_mel(y, 16000, preset="htk", n_fft=512)
    assert_within(ours, theirs, 1e-3, 1e-4)


def test_a_batch_is_each_row_alone():
    batch = np.stack([noise(0.5, 8000, seed) for seed in range(3)])
    together = speechrnn.mfcc(batch, 8000)
    assert together.shape[0] == 3
    for row, alone in zip(batch, together):
        np.testing.assert_array_equal(speechrnn.mfcc(row, 8000), alone)


def test_int16_float64_and_lists_are_converted_once_to_the_same_samples():
    y16 = (noise(0.5, 8000, 4) * 32767).astype(np.int16)
    as_float = y16.astype(np.float32) / 32768
    expected = speechrnn.mfcc(as_float, 8000)
    np.testing.assert_array_equal(speechrnn.mfcc(y16, 8000), expected)
    np.testing.assert_array_equal(speechrnn.mfcc(as_float.astype(np.float64), 8000), expected)
    np.testing.assert_array_equal(speechrnn.mfcc(as_float.tolist(), 8000), expected)
    strided = np.repeat(as_float, 2)[::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(speechrnn.mfcc(strided, 8000), expected)
