"""Recogniser over briefly trained runs: predict from a path equals predict from the loaded
samples, probabilities are a distribution in label order, and a live stream gives the same
events for any chunking."""

import csv
import pathlib

import numpy as np
import pytest

import speechrnn

ROOT = pathlib.Path(__file__).resolve().parents[2]


def corpus_files(manifest, split="test", count=4):
    with open(ROOT / manifest) as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    return [ROOT / pathlib.Path(manifest).parent / r["path"] for r in rows[:count]]


def test_classifier_predicts_a_distribution_over_its_labels(digits_run):
    r = speechrnn.Recogniser(digits_run)
    assert r.objective == "classes" and r.sample_rate == 8000
    assert sorted(r.labels) == [str(d) for d in range(10)]
    for path in corpus_files("datasets/default/manifest.csv"):
        by_path = r.predict(str(path))
        p = by_path["probabilities"]
        assert p.shape == (10,) and p.dtype == np.float32
        assert abs(float(p.sum()) - 1) < 1e-5
        assert by_path["label"] == r.labels[int(p.argmax())]
        assert by_path["probability"] == p.max()
        y, sr = speechrnn.load(path)
        by_samples = r.predict(y, sr=sr)
        np.testing.assert_allclose(by_samples["probabilities"], p, atol=1e-6)


def test_int8_and_bf16_recognisers_stay_close_to_f32(digits_run):
    f32 = speechrnn.Recogniser(digits_run)
    for precision in ["int8", "bf16"]:
        r = speechrnn.Recogniser(digits_run, precision=precision)
        for path in corpus_files("datasets/default/manifest.csv"):
            want = f32.predict(str(path))["probabilities"]
            got = r.predict(str(path))["probabilities"]
            assert np.abs(got - want).max() < 0.1
            assert not np.array_equal(got, want)
    with pytest.raises(speechrnn.OptionsError, match="unknown precision"):
        speechrnn.Recogniser(digits_run, precision="int4")


def test_classifier_cannot_listen_live(digits_run):
    r = speechrnn.Recogniser(digits_run)
    with pytest.raises(speechrnn.OptionsError, match="live recognition needs"):
        r.stream()


def test_bidirectional_run_cannot_listen_live(bidirectional_strings_run):
    r = speechrnn.Recogniser(bidirectional_strings_run)
    assert r.objective == "sequences"
    with pytest.raises(speechrnn.OptionsError, match="cannot listen live"):
        r.stream()


def test_predict_refuses_bad_input(digits_run, tmp_path):
    r = speechrnn.Recogniser(digits_run)
    with pytest.raises(speechrnn.AudioFileError, match="missing.wav"):
        r.predict(str(tmp_path / "missing.wav"))
    with pytest.raises(speechrnn.AudioError, match="one utterance"):
        r.predict(np.zeros((2, 800), np.float32))
    with pytest.raises(speechrnn.AudioError):
        r.predict(np.zeros(10, np.float32))
    with pytest.raises(speechrnn.AudioError, match="not finite"):
        r.predict(np.full(8000, np.nan, np.float32))


def test_string_model_decodes_and_streams_alike_for_any_chunking(causal_strings_run):
    r = speechrnn.Recogniser(causal_strings_run)
    assert r.objective == "sequences" and r.labels[0] != "0"
    rng = np.random.default_rng(3)
    for path in corpus_files("datasets/default_strings/manifest.csv", count=3):
        prediction = r.predict(str(path))
        assert isinstance(prediction["text"], str)
        assert [l["label"] for l in prediction["labels"]] == list(prediction["text"])
        y, sr = speechrnn.load(path)
        runs = []
        for _ in range(3):
            stream = r.stream(sr=sr)
            cuts = np.sort(rng.integers(0, len(y) + 1, size=12))
            events = [e for chunk in np.split(y, cuts) for e in stream.push(chunk)]
            # When an event is reported depends on where the chunk that completed it ends.
            runs.append([{k: v for k, v in e.items() if k != "emitted_at"}
                         for e in events + stream.finish()])
        assert runs[0] == runs[1] == runs[2]
        finals = [e for e in runs[0] if e["event"] == "final"]
        assert finals and all(e["end"] >= e["start"] for e in finals)
