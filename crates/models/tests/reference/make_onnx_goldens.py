#!/usr/bin/env python3
"""Writes the golden files the `onnx_reference` test reads: for each case, one safetensors
file with the weights under PyTorch's names (gate order i,f,g,o / r,z,n), the input, the
initial state and onnxruntime's outputs of the ONNX RNN / LSTM / GRU operator, plus a JSON
beside it recording the exact operator call and the package versions.

Run from the repository root with the versions pinned in requirements.txt:
    python3 -m venv .venv && .venv/bin/pip install -r crates/models/tests/reference/requirements.txt
    .venv/bin/python crates/models/tests/reference/make_onnx_goldens.py
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper
from safetensors.numpy import save_file

HERE = Path(__file__).parent
BATCH, TIME, INPUT, HIDDEN = 3, 6, 4, 5

# PyTorch block order -> ONNX block order.
ONNX_ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}  # iofc from ifgo; zrh from rzn
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}

CASES = [
    # name, op, attributes, bidirectional, lengths, initial state, peephole
    ("rnn_tanh", "RNN", {}, False, None, True, False),
    ("rnn_relu", "RNN", {"activations": ["Relu"]}, False, None, False, False),
    ("rnn_sigmoid_bidirectional", "RNN", {"activations": ["Sigmoid", "Sigmoid"]}, True, [6, 4, 1], True, False),
    ("lstm", "LSTM", {}, False, None, True, False),
    ("lstm_peephole", "LSTM", {}, False, None, True, True),
    ("lstm_coupled", "LSTM", {"input_forget": 1}, False, None, False, False),
    ("lstm_peephole_coupled_bidirectional", "LSTM", {"input_forget": 1}, True, [6, 3, 5], True, True),
    ("lstm_bidirectional_lengths", "LSTM", {}, True, [6, 4, 1], True, False),
    ("gru_reset_after", "GRU", {"linear_before_reset": 1}, False, None, True, False),
    ("gru_reset_before", "GRU", {"linear_before_reset": 0}, False, None, True, False),
    ("gru_reset_after_bidirectional_lengths", "GRU", {"linear_before_reset": 1}, True, [2, 6, 5], True, False),
]


def reorder(blocks_first, op):
    """Reorders the gate blocks along axis 0 from PyTorch's order to ONNX's."""
    blocks = np.split(blocks_first, GATES[op], axis=0)
    return np.concatenate([blocks[k] for k in ONNX_ORDER[op]], axis=0)


def make_case(name, op, attrs, bidirectional, lengths, with_state, peephole, rng):
    dirs = 2 if bidirectional else 1
    g = GATES[op]
    bound = 1.0 / np.sqrt(HIDDEN)
    u = lambda *shape: rng.uniform(-bound, bound, size=shape).astype(np.float32)
    tensors = {}
    W, R, Bias, P = [], [], [], []
    for d in range(dirs):
        suffix = "_l0" + ("_reverse" if d == 1 else "")
        w_ih, w_hh, b_ih, b_hh = u(g * HIDDEN, INPUT), u(g * HIDDEN, HIDDEN), u(g * HIDDEN), u(g * HIDDEN)
        tensors.update({f"weight_ih{suffix}": w_ih, f"weight_hh{suffix}": w_hh,
                        f"bias_ih{suffix}": b_ih, f"bias_hh{suffix}": b_hh})
        W.append(reorder(w_ih, op))
        R.append(reorder(w_hh, op))
        Bias.append(np.concatenate([reorder(b_ih, op), reorder(b_hh, op)]))
        if peephole:
            p = u(3 * HIDDEN)  # ours: i, f, o
            tensors[f"weight_peephole{suffix}"] = p
            p_i, p_f, p_o = np.split(p, 3)
            P.append(np.concatenate([p_i, p_o, p_f]))  # ONNX: i, o, f
    x = rng.standard_normal((BATCH, TIME, INPUT)).astype(np.float32)
    tensors["input"] = x
    feeds = {"X": np.ascontiguousarray(x.transpose(1, 0, 2)), "W": np.stack(W), "R": np.stack(R), "B": np.stack(Bias)}
    if lengths:
        feeds["sequence_lens"] = np.array(lengths, dtype=np.int32)
        tensors["lengths"] = np.array(lengths, dtype=np.float32)
    if with_state:
        feeds["initial_h"] = rng.standard_normal((dirs, BATCH, HIDDEN)).astype(np.float32)
        tensors["initial_h"] = feeds["initial_h"]
        if op == "LSTM":
            feeds["initial_c"] = rng.standard_normal((dirs, BATCH, HIDDEN)).astype(np.float32)
            tensors["initial_c"] = feeds["initial_c"]
    if peephole:
        feeds["P"] = np.stack(P)
    # LSTM inputs: X W R B sequence_lens initial_h initial_c P
    if op == "LSTM":
        full = ["X", "W", "R", "B", "sequence_lens" if lengths else "",
                "initial_h" if with_state else "", "initial_c" if with_state else "", "P" if peephole else ""]
    else:
        full = ["X", "W", "R", "B", "sequence_lens" if lengths else "", "initial_h" if with_state else ""]
    while full and full[-1] == "":
        full.pop()
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node_attrs = dict(attrs, hidden_size=HIDDEN, direction="bidirectional" if bidirectional else "forward")
    node = helper.make_node(op, full, outputs, **node_attrs)
    types = {"sequence_lens": TensorProto.INT32}
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), feeds[n].shape) for n in full if n],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [TIME, dirs, BATCH, HIDDEN] if n == "Y" else [dirs, BATCH, HIDDEN])
         for n in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=10)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    results = dict(zip(outputs, session.run(outputs, {n: feeds[n] for n in full if n})))
    y = results["Y"]  # [T, dirs, B, H]
    tensors["output"] = np.ascontiguousarray(y.transpose(2, 0, 1, 3).reshape(BATCH, TIME, dirs * HIDDEN))
    tensors["final_h"] = results["Y_h"]
    if op == "LSTM":
        tensors["final_c"] = results["Y_c"]
    path = HERE / f"{name}.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    meta = {
        "made_by": "make_onnx_goldens.py",
        "reference": f"onnxruntime {ort.__version__} CPUExecutionProvider, onnx {onnx.__version__} opset 14, numpy {np.__version__}",
        "operator": op,
        "inputs": [n for n in full],
        "attributes": node_attrs,
        "shapes": {"batch": BATCH, "time": TIME, "input_size": INPUT, "hidden_size": HIDDEN},
        "sequence_lens": lengths,
        "cell": {"peephole": peephole},
        "layout": "weights in PyTorch order and names; output [batch, time, dirs*hidden]; final_h [dirs, batch, hidden]",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    (HERE / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")


def main():
    rng = np.random.default_rng(20261123)
    for case in CASES:
        make_case(*case, rng)
        print("wrote", case[0])


if __name__ == "__main__":
    main()
