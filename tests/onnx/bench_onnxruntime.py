"""onnxruntime's side of the ONNX bench (crates/train/benches/onnx.rs runs it beside ours).

Times an exported run one utterance at a time on one thread (intra- and inter-op), as the
median of REPEATS passes over the list after one warm-up pass:
  - WAVEFORM_MODEL (`experiment export RUN --waveform`): the samples in, probabilities out;
  - FEATURES_MODEL (`experiment export RUN`): the waveform graph's own features in (computed
    once, untimed), probabilities out;
  - INT8_MODEL, if given (`experiment export RUN --precision int8`, an LSTM run's layers as
    DynamicQuantizeLSTM): the same features in.

usage: bench_onnxruntime.py WAVEFORM_MODEL FEATURES_MODEL LIST [--repeats N] [--int8 INT8_MODEL]
LIST: a text file naming one `.npy` per line, an utterance's float32 samples `[n, 1]` (±1) at the
run's rate.
Prints one JSON line: onnxruntime's version, seconds per pass of each model, and the top
class of each utterance (null for a CTC run), and the int8 model's (seconds and top classes).
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def median_seconds(repeats, run):
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("waveform_model")
    parser.add_argument("features_model")
    parser.add_argument("list")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--int8")
    args = parser.parse_args()
    with open(args.list) as f:
        audio = [np.load(line.strip()).astype(np.float32).reshape(1, -1) for line in f if line.strip()]
    waveform = session(args.waveform_model)
    features = session(args.features_model)
    output = waveform.get_outputs()[-1].name
    waveform_feeds = [{"waveform": a, "lengths": np.array([a.shape[1]], np.int64)} for a in audio]
    features_feeds = []
    for feeds in waveform_feeds:
        x, frames, _ = waveform.run(None, feeds)
        features_feeds.append({"features": x, "lengths": frames.astype(np.int64)})

    def run_all(model, all_feeds):
        return [model.run([output], feeds)[0] for feeds in all_feeds]

    def top_classes(probabilities):
        return None if output != "probabilities" else [int(p[0].argmax()) for p in probabilities]

    result = {
        "onnxruntime": ort.__version__,
        "utterances": len(audio),
        "waveform_seconds": median_seconds(args.repeats, lambda: run_all(waveform, waveform_feeds)),
        "features_seconds": median_seconds(args.repeats, lambda: run_all(features, features_feeds)),
        "top": top_classes(run_all(waveform, waveform_feeds)),
    }
    if args.int8:
        int8 = session(args.int8)
        result["int8_features_seconds"] = median_seconds(args.repeats, lambda: run_all(int8, features_feeds))
        result["int8_top"] = top_classes(run_all(int8, features_feeds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
