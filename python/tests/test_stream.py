"""FeatureStream over random chunkings equals the whole signal's frames, bit for bit; and
mfcc_files gives each file's frames whatever the thread count, with the GIL released."""

import pathlib
import threading

import numpy as np
import pytest

import speechrnn

AUDIO = pathlib.Path(__file__).resolve().parents[2] / "crates/features/tests/audio"


def chunked(y, rng):
    """y cut at random places: single samples, empty chunks and long runs among them."""
    cuts = np.sort(rng.integers(0, len(y) + 1, size=rng.integers(1, 40)))
    return np.split(y, cuts)


@pytest.mark.parametrize("preset,overrides", [
    ("kaldi", {}),
    ("librosa", {"n_fft": 512, "hop_length": 160, "top_db": None}),
    ("librosa", {"n_fft": 512, "hop_length": 160, "top_db": None, "pad_mode": "reflect"}),
    ("htk", {"n_fft": 512}),
])
@pytest.mark.parametrize("feature", ["mfcc", "log_mel"])
def test_random_chunkings_equal_the_whole_signal(preset, overrides, feature):
    y, sr = speechrnn.load(AUDIO / "goforward_16k.wav")
    whole = getattr(speechrnn, feature)(y, sr, preset=preset, **overrides)
    rng = np.random.default_rng(7)
    for _ in range(10):
        stream = speechrnn.FeatureStream(sr, preset=preset, feature=feature, **overrides)
        parts = [stream.push(chunk) for chunk in chunked(y, rng)] + [stream.finish()]
        assert all(p.shape[1] == stream.dim for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_a_finished_stream_takes_nothing_more():
    stream = speechrnn.FeatureStream(16000)
    stream.push(np.zeros(800, np.float32))
    stream.finish()
    with pytest.raises(speechrnn.AudioError, match="finished"):
        stream.push(np.zeros(10, np.float32))
    with pytest.raises(speechrnn.AudioError, match="finished"):
        stream.finish()


def files():
    names = ["goforward_16k.wav", "goforward_44k.wav", "digit7_8k.wav", "odd_16k.wav",
             "digit7_stereo.wav", "short_16k.wav"] * 4
    return [AUDIO / n for n in names]


def test_mfcc_files_equals_each_file_alone_on_any_thread_count():
    paths = files()
    alone = [speechrnn.mfcc(*speechrnn.load(p)) for p in paths]
    for threads in (1, 2, None):
        together = speechrnn.mfcc_files(paths, threads=threads)
        assert len(together) == len(paths)
        for a, b in zip(alone, together):
            np.testing.assert_array_equal(a, b)
    resampled = speechrnn.mfcc_files(paths[:2], sr=8000, threads=2)
    np.testing.assert_array_equal(
        resampled[1], speechrnn.mfcc(*speechrnn.load(paths[1], sr=8000)))


def test_mfcc_files_releases_the_gil():
    """A Python thread keeps running while the Rust threads compute."""
    paths = files() * 20
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        before = len(ticks)
        speechrnn.mfcc_files(paths, threads=1)
        during = len(ticks) - before
    finally:
        done.set()
        counter.join()
    assert during > 1000, f"the counting thread ran {during} times during the call"
