//! Outputs and final states equal onnxruntime's ONNX `RNN`, `LSTM` and `GRU` operators to
//! 1e-5. The golden files and the script that made them are in `tests/reference/`; each
//! case's JSON records the exact operator call and the versions.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;
use burn_ndarray::NdArray;
use common::max_abs_diff;
use models::{
    CellKind, Nonlinearity, RecurrentConfig, RecurrentState, StateDict, read_safetensors,
};
use serde_json::Value;

type B = NdArray;
const TOLERANCE: f32 = 1e-5;

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")
}

/// The cell that the ONNX operator call in `meta` computes.
fn cell_of(meta: &Value) -> CellKind {
    let attr = &meta["attributes"];
    let int = |key: &str| attr[key].as_i64().unwrap_or(0);
    match meta["operator"].as_str().expect("operator") {
        "RNN" => CellKind::rnn(match attr["activations"][0].as_str().unwrap_or("Tanh") {
            "Tanh" => Nonlinearity::Tanh,
            "Relu" => Nonlinearity::Relu,
            "Sigmoid" => Nonlinearity::Sigmoid,
            other => panic!("activation {other}"),
        }),
        "LSTM" => CellKind::Lstm {
            peephole: meta["cell"]["peephole"].as_bool().expect("peephole flag"),
            coupled_input_forget: int("input_forget") == 1,
            unit_forget_bias: false,
            chrono_init: None,
        },
        "GRU" => CellKind::Gru {
            reset_after: int("linear_before_reset") == 1,
        },
        other => panic!("operator {other}"),
    }
}

fn tensor<const D: usize>(dict: &StateDict, key: &str) -> Tensor<B, D> {
    Tensor::from_data(dict[key].clone(), &Default::default())
}

#[test]
fn every_cell_equals_onnxruntime() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(reference_dir())
        .expect("reference folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 11, "golden cases missing: {cases:?}");
    for meta_path in cases {
        let name = meta_path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).expect("json"))
            .expect("valid json");
        let golden =
            read_safetensors(&meta_path.with_extension("safetensors")).expect("golden file");
        let shapes = &meta["shapes"];
        let size = |k: &str| shapes[k].as_u64().expect("size") as usize;
        let bidirectional = meta["attributes"]["direction"] == "bidirectional";
        let weights: StateDict = golden
            .iter()
            .filter(|(k, _)| k.starts_with("weight_") || k.starts_with("bias_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let cell = cell_of(&meta);
        let has_cell = cell.has_cell_state();
        let rnn = RecurrentConfig::new(cell, size("input_size"), size("hidden_size"))
            .with_bidirectional(bidirectional)
            .init::<B>(&Default::default())
            .load_state_dict(&weights)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let lengths: Option<Vec<usize>> = golden
            .get("lengths")
            .map(|l| l.iter::<f32>().map(|v| v as usize).collect());
        let state = golden.contains_key("initial_h").then(|| RecurrentState {
            hidden: tensor(&golden, "initial_h"),
            cell: has_cell.then(|| tensor(&golden, "initial_c")),
        });
        let (output, last) = rnn.forward(tensor(&golden, "input"), state, lengths.as_deref());
        let checks = [
            ("output", max_abs_diff(output, tensor(&golden, "output"))),
            (
                "final_h",
                max_abs_diff(last.hidden, tensor(&golden, "final_h")),
            ),
            (
                "final_c",
                last.cell
                    .map_or(0.0, |c| max_abs_diff(c, tensor(&golden, "final_c"))),
            ),
        ];
        for (what, diff) in checks {
            assert!(
                diff <= TOLERANCE,
                "{name}: {what} differs from onnxruntime by {diff}"
            );
        }
    }
}
