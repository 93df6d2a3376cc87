#!/usr/bin/env python3
"""Checks the ONNX cases that `crates/train/tests/export.rs` writes
(`SPEECHRNN_ONNX_CASES=DIR cargo test --release -p train --test export`):
`onnx.checker.check_model(full_check=True)` passes on every file, and onnxruntime's outputs
equal ours (recorded in DIR/NAME.json) to 1e-5: whole-sequence graphs from zero states and
from given initial states `h_0`/`c_0`, step graphs fed one frame at a time carrying
`h_n`/`c_n`; graphs that take audio compute our features to 1e-3 and our outputs to 1e-4
(the tolerances each run records). Per-step outputs past a sequence's length are padding and are not compared.

    python3 -m venv ENV && ENV/bin/pip install -r tests/onnx/requirements.txt
    ENV/bin/python tests/onnx/check_onnxruntime.py DIR

Prints one JSON line per file and exits 1 if any differs.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-5


def array(values, shape):
    return np.array(values, dtype=np.float32).reshape(shape)


def run_sequences(session, run, ctc):
    feeds = {
        "features": array(run["features"], run["features_shape"]),
        "lengths": np.array(run["lengths"], dtype=np.int64),
    }
    if run["h_0"] is not None:
        feeds["h_0"] = array(run["h_0"], run["state_shape"])
    if run["c_0"] is not None:
        feeds["c_0"] = array(run["c_0"], run["state_shape"])
    got = session.run(None, feeds)[0]
    if ctc:
        for b, length in enumerate(run["lengths"]):
            got[b, length:, :] = 0.0
    return got.reshape(-1)


def run_waveform(session, run, ctc):
    """The main output and the largest feature difference over each utterance's frames."""
    feeds = {
        "waveform": array(run["waveform"], run["waveform_shape"]),
        "lengths": np.array(run["lengths"], dtype=np.int64),
    }
    features, frame_lengths, got = session.run(None, feeds)
    if list(frame_lengths) != run["expected_frame_lengths"]:
        raise ValueError(f"frame_lengths {list(frame_lengths)}, expected {run['expected_frame_lengths']}")
    expected = array(run["expected_features"], run["expected_features_shape"])
    worst = 0.0
    for b, length in enumerate(frame_lengths):
        worst = max(worst, float(np.abs(features[b, :length] - expected[b, :length]).max()))
    if ctc:
        for b, length in enumerate(frame_lengths):
            got[b, length:, :] = 0.0
    return got.reshape(-1), worst


def run_frame_by_frame(session, run):
    x = array(run["features"], run["features_shape"])
    names = [i.name for i in session.get_inputs()]
    states = {name: np.zeros(run["state_shape"], dtype=np.float32) for name in names[1:]}
    steps = []
    for t in range(x.shape[1]):
        outputs = session.run(None, {"features": x[:, t : t + 1, :], **states})
        steps.append(outputs[0])
        states = dict(zip(names[1:], outputs[1:]))
    return np.concatenate(steps, axis=1).reshape(-1)


def check(path):
    record = json.loads(path.with_suffix(".json").read_text())
    onnx.checker.check_model(str(path), full_check=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optional states are initializers that are inputs, on purpose
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    worst, ok = {}, True
    for run in record["runs"]:
        if record["form"] == "streaming":
            got = run_frame_by_frame(session, run)
        elif record["form"] == "waveform":
            got, feature_difference = run_waveform(session, run, record["ctc"])
            worst["features"] = max(worst.get("features", 0.0), feature_difference)
            ok &= feature_difference <= run["features_tolerance"]
        else:
            got = run_sequences(session, run, record["ctc"])
        expected = np.array(run["expected"], dtype=np.float32)
        difference = float(np.abs(got - expected).max())
        worst[record["output"]] = max(worst.get(record["output"], 0.0), difference)
        ok &= difference <= run.get("tolerance", TOLERANCE)
    return worst, ok, len(record["runs"])


def main():
    folder = Path(sys.argv[1])
    files = sorted(folder.glob("*.onnx"))
    if not files:
        sys.exit(f"no .onnx files in {folder}")
    failed = 0
    for path in files:
        try:
            worst, ok, runs = check(path)
            line = {"file": path.name, "runs": runs, "max_abs_diff": worst, "ok": bool(ok)}
        except Exception as error:  # a file onnx or onnxruntime refuses is a failure too
            line = {"file": path.name, "error": repr(error), "ok": False}
        failed += not line["ok"]
        line.update({"onnxruntime": ort.__version__, "onnx": onnx.__version__})
        print(json.dumps(line))
    print(json.dumps({"files": len(files), "failed": failed}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
