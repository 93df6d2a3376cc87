//! What the ONNX export tests share: our outputs for a case, and the case files that
//! `tests/onnx/check_onnxruntime.py` and `scripts/tract-check` read back.
// Each test file that includes this module uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Distribution, Tensor};
use burn_ndarray::NdArray;
use models::{Precision, RecurrentState, SequenceClassifier};
use onnx::proto::ModelProto;
use serde_json::Value;
use train::export::Head;

type B = NdArray;

/// Our outputs from `state` (zeros when `None`), the recurrent layers run at `precision`:
/// `probabilities` `[batch, classes]`, or `log_probs` `[batch, time, classes]` with the
/// steps past each length set to 0.
pub fn ours(
    model: &SequenceClassifier<B>,
    head: Head,
    x: Tensor<B, 3>,
    (lengths, state): (&[usize], Option<RecurrentState<B, 3>>),
    precision: Precision,
) -> Vec<f32> {
    let (hidden, _) = match precision {
        Precision::F32 => model.recurrent.forward(x, state, Some(lengths)),
        _ => model
            .recurrent
            .quantize(precision)
            .unwrap()
            .forward(x, state, Some(lengths)),
    };
    let logits = model.output.forward(hidden);
    match head {
        Head::Classify(pooling) => flat(&softmax(pooling.pool(logits, Some(lengths)), 1)),
        Head::Ctc => masked(log_softmax(logits, 2), lengths),
    }
}

/// `per_step` `[batch, time, classes]` flattened, the steps past each length set to 0.
pub fn masked(per_step: Tensor<B, 3>, lengths: &[usize]) -> Vec<f32> {
    let [batch, time, classes] = per_step.dims();
    let mut values = flat(&per_step);
    for (b, &length) in lengths.iter().enumerate().take(batch) {
        for t in length..time {
            values[(b * time + t) * classes..][..classes].fill(0.0);
        }
    }
    values
}

pub fn flat<const D: usize>(x: &Tensor<B, D>) -> Vec<f32> {
    x.to_data().to_vec::<f32>().unwrap()
}

/// Standard normal values.
pub fn random(shape: [usize; 3]) -> Tensor<B, 3> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

/// `$SPEECHRNN_ONNX_CASES`, or a temporary folder (kept while the second value lives).
pub fn cases_folder() -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("SPEECHRNN_ONNX_CASES") {
        Some(dir) => (PathBuf::from(dir), None),
        None => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_path_buf(), Some(temp))
        }
    }
}

/// Writes `DIR/NAME.onnx` and `DIR/NAME.json` and returns the decoded file.
pub fn write_case(dir: &Path, name: &str, proto: &ModelProto, record: Value) -> ModelProto {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}.onnx"));
    features::write_atomic(&path, &onnx::to_bytes(proto).unwrap()).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), record.to_string()).unwrap();
    onnx::from_bytes(&std::fs::read(&path).unwrap()).unwrap()
}

pub fn names(values: &[onnx::proto::ValueInfoProto]) -> Vec<&str> {
    values.iter().map(|v| v.name()).collect()
}
