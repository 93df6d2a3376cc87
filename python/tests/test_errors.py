"""Every function with bad input raises one of speechrnn's exceptions (a FeatureError, and a
ValueError or OSError as the case is), never a Rust panic."""

import pathlib

import numpy as np
import pytest

import speechrnn

AUDIO = pathlib.Path(__file__).resolve().parents[2] / "crates/features/tests/audio"
Y = np.zeros(8000, np.float32)


def raises(kind, match=None):
    return pytest.raises(kind, match=match)


@pytest.mark.parametrize("function", [speechrnn.mfcc, speechrnn.log_mel])
@pytest.mark.parametrize("kwargs,kind,match", [
    ({"preset": "kaldy"}, speechrnn.OptionsError, "unknown preset"),
    ({"n_mels": 0}, speechrnn.OptionsError, "positive integer"),
    ({"n_mels": "40"}, speechrnn.OptionsError, "positive integer"),
    ({"n_fft": 64}, speechrnn.OptionsError, "n_fft"),
    ({"fmin": float("nan")}, speechrnn.OptionsError, "finite"),
    ({"fmax": 20000.0}, speechrnn.OptionsError, "mel range"),
    ({"hop_length": -1}, speechrnn.OptionsError, "positive"),
    ({"window": "kaiser"}, speechrnn.OptionsError, "kaiser"),
    ({"norm": "l2"}, speechrnn.OptionsError, "slaney"),
    ({"pad_mode": "reflect"}, speechrnn.OptionsError, "center=True"),
    ({"top_db": 80.0}, speechrnn.OptionsError, "librosa preset"),
    ({"colour": 3}, speechrnn.OptionsError, "unknown option"),
])
def test_bad_options(function, kwargs, kind, match):
    with raises(kind, match):
        function(Y, 16000, **kwargs)


@pytest.mark.parametrize("y,kind,match", [
    (np.array([0.0, np.nan] * 4000, np.float32), speechrnn.AudioError, "not finite"),
    (np.array([0.0, np.inf] * 4000), speechrnn.AudioError, "not finite"),
    (np.zeros((2, 3, 400), np.float32), speechrnn.AudioError, "1-D"),
    (np.zeros((0, 400), np.float32), speechrnn.AudioError, "1-D"),
    (np.array(1.0, np.float32), speechrnn.AudioError, "1-D"),
    (["a", "b"], speechrnn.AudioError, "array of samples"),
    (object(), speechrnn.AudioError, "array of samples"),
])
def test_bad_samples(y, kind, match):
    with raises(kind, match):
        speechrnn.mfcc(y, 16000)


@pytest.mark.parametrize("sr", [0, 2_000_000])
def test_bad_rates(sr):
    with raises(speechrnn.OptionsError):
        speechrnn.mfcc(Y, sr)
    with raises(speechrnn.OptionsError):
        speechrnn.FeatureStream(sr)


def test_negative_rate_is_a_type_error_from_python_itself():
    with raises(OverflowError):
        speechrnn.mfcc(Y, -16000)


def test_every_class_is_a_feature_error_and_a_builtin():
    assert issubclass(speechrnn.OptionsError, (speechrnn.FeatureError, ValueError))
    assert issubclass(speechrnn.AudioError, ValueError)
    assert issubclass(speechrnn.AudioFileError, OSError)
    assert issubclass(speechrnn.RunError, OSError)
    for cls in (speechrnn.OptionsError, speechrnn.AudioError, speechrnn.AudioFileError,
                speechrnn.RunError):
        assert issubclass(cls, speechrnn.FeatureError)


def test_bad_files(tmp_path):
    missing = tmp_path / "missing.wav"
    text = tmp_path / "text.wav"
    text.write_text("not audio")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes((AUDIO / "digit7_8k.wav").read_bytes()[:1000])
    for path, match in [(missing, "missing.wav"), (text, "not a readable WAV"),
                        (truncated, "truncated"), (tmp_path, "directory"),
                        (AUDIO.parent / "audio/alaw.wav", "unsupported WAV encoding")]:
        with raises(speechrnn.AudioFileError, match):
            speechrnn.load(path)
        with raises(OSError, match):
            speechrnn.mfcc_files([AUDIO / "digit7_8k.wav", path])
    with raises(speechrnn.AudioFileError, "missing.wav"):
        speechrnn.load(missing, mono=False)


def test_bad_load_and_files_arguments():
    with raises(speechrnn.OptionsError):
        speechrnn.load(AUDIO / "digit7_8k.wav", sr=0)
    with raises(speechrnn.OptionsError, "threads"):
        speechrnn.mfcc_files([AUDIO / "digit7_8k.wav"], threads=0)
    with raises(speechrnn.OptionsError, "unknown option"):
        speechrnn.mfcc_files([AUDIO / "digit7_8k.wav"], bogus=1)
    with raises(TypeError):
        speechrnn.mfcc_files(AUDIO / "digit7_8k.wav")


def test_bad_stream_input():
    with raises(speechrnn.OptionsError, "whole input"):
        speechrnn.FeatureStream(16000, preset="librosa")
    with raises(speechrnn.OptionsError, "feature"):
        speechrnn.FeatureStream(16000, feature="spectrum")
    stream = speechrnn.FeatureStream(16000)
    with raises(speechrnn.AudioError, "not finite"):
        stream.push(np.array([0.0, np.nan], np.float32))
    with raises(speechrnn.AudioError, "1-D"):
        stream.push(np.zeros((2, 10), np.float32))


def test_bad_runs(tmp_path):
    with raises(speechrnn.RunError, "config"):
        speechrnn.Recogniser(tmp_path)
    (tmp_path / "config.toml").write_text("this is not toml [")
    with raises(speechrnn.RunError):
        speechrnn.Recogniser(tmp_path)
