//! `tract-check DIR`: every `NAME.onnx` in DIR run by tract with the inputs of `NAME.json`,
//! compared with our outputs recorded there (`crates/train/tests/export.rs` writes them).
//! Prints one JSON line per file and exits 1 when any output differs by more than its
//! tolerance: 1e-5, or what the run records (graphs that take audio: features 1e-3,
//! outputs 1e-4).
//!
//! tract turns a graph input that has an initializer into a constant, so the optional
//! initial states `h_0`/`c_0` of a whole-sequence graph cannot be fed here: those runs are
//! counted as skipped (onnxruntime checks them). The step graphs take their states as plain
//! inputs and are fed one frame at a time, carrying `h_n`/`c_n` forward.

use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tract_onnx::prelude::*;

const TOLERANCE: f32 = 1e-5;

/// A model tract has optimised and planned.
type Plan = std::sync::Arc<TypedRunnableModel>;

fn floats(value: &Value) -> anyhow::Result<Vec<f32>> {
    value
        .as_array()
        .context("an array of numbers")?
        .iter()
        .map(|v| v.as_f64().map(|f| f as f32).context("a number"))
        .collect()
}

fn sizes(value: &Value) -> anyhow::Result<Vec<usize>> {
    value
        .as_array()
        .context("an array of sizes")?
        .iter()
        .map(|v| v.as_u64().map(|n| n as usize).context("a size"))
        .collect()
}

fn tensor(shape: &[usize], values: Vec<f32>) -> anyhow::Result<Tensor> {
    Ok(tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), values)?.into_tensor())
}

/// The model planned for inputs of these types and shapes: tract folds the shape
/// arithmetic of a graph with dynamic axes only once they are known.
fn plan(path: &Path, inputs: &[(DatumType, Vec<usize>)]) -> anyhow::Result<Plan> {
    let mut model = tract_onnx::onnx().model_for_path(path)?;
    for (index, (datum, shape)) in inputs.iter().enumerate() {
        model.set_input_fact(index, InferenceFact::dt_shape(*datum, shape.clone()))?;
    }
    let plan = model.into_optimized()?.into_runnable()?;
    Ok(plan)
}

/// Why tract cannot run this file as ONNX defines it, if it cannot: tract-onnx 0.23.9 builds
/// every `RNN` with tanh whatever its `activations` (`ops/rec/rnn.rs`) and ignores the
/// `LSTM`'s `input_forget` (`ops/rec/lstm.rs`), so it computes other functions; it has no
/// onnxruntime operators (the int8 export's `com.microsoft.DynamicQuantizeLSTM`).
fn unsupported(path: &Path) -> anyhow::Result<Option<&'static str>> {
    let proto = tract_onnx::onnx().proto_model_for_path(path)?;
    let graph = proto.graph.context("no graph")?;
    for node in &graph.node {
        if node.domain == "com.microsoft" {
            return Ok(Some("tract has no onnxruntime (com.microsoft) operators"));
        }
        for attribute in &node.attribute {
            let activation_not_tanh = node.op_type == "RNN"
                && attribute.name == "activations"
                && attribute.strings.iter().any(|s| s.as_slice() != b"Tanh");
            if activation_not_tanh {
                return Ok(Some("tract runs every RNN with tanh"));
            }
            if node.op_type == "LSTM" && attribute.name == "input_forget" && attribute.i != 0 {
                return Ok(Some("tract ignores the LSTM's input_forget"));
            }
        }
    }
    Ok(None)
}

fn f32_input(run: &Value, key: &str) -> anyhow::Result<(DatumType, Vec<usize>)> {
    Ok((f32::datum_type(), sizes(&run[key])?))
}

fn lengths_input(run: &Value) -> anyhow::Result<(DatumType, Vec<usize>)> {
    Ok((i64::datum_type(), vec![sizes(&run["lengths"])?.len()]))
}

/// The whole sequence at once; per-step outputs past each length are zeroed as ours are.
fn run_sequences(path: &Path, run: &Value, ctc: bool) -> anyhow::Result<Vec<f32>> {
    let plan = plan(
        path,
        &[f32_input(run, "features_shape")?, lengths_input(run)?],
    )?;
    let shape = sizes(&run["features_shape"])?;
    let x = tensor(&shape, floats(&run["features"])?)?;
    let lengths: Vec<i64> = sizes(&run["lengths"])?.iter().map(|&l| l as i64).collect();
    let lengths = tract_ndarray::Array1::from_vec(lengths.clone()).into_tensor();
    let outputs = plan.run(tvec![x.into(), lengths.into()])?;
    let view = outputs[0].to_plain_array_view::<f32>()?;
    let mut got: Vec<f32> = view.iter().copied().collect();
    if ctc {
        let (time, classes) = (view.shape()[1], view.shape()[2]);
        for (b, length) in sizes(&run["lengths"])?.into_iter().enumerate() {
            for t in length..time {
                got[(b * time + t) * classes..][..classes].fill(0.0);
            }
        }
    }
    Ok(got)
}

/// Audio in: the main output (per-step outputs past each utterance's frames zeroed), and
/// the largest difference of the in-graph features from ours over each utterance's frames.
fn run_waveform(path: &Path, run: &Value, ctc: bool) -> anyhow::Result<(Vec<f32>, f32)> {
    let plan = plan(
        path,
        &[f32_input(run, "waveform_shape")?, lengths_input(run)?],
    )?;
    let waveform = tensor(&sizes(&run["waveform_shape"])?, floats(&run["waveform"])?)?;
    let lengths: Vec<i64> = sizes(&run["lengths"])?.iter().map(|&l| l as i64).collect();
    let lengths = tract_ndarray::Array1::from_vec(lengths).into_tensor();
    let outputs = plan.run(tvec![waveform.into(), lengths.into()])?;
    let frame_lengths: Vec<usize> = outputs[1]
        .to_plain_array_view::<i64>()?
        .iter()
        .map(|&l| l as usize)
        .collect();
    if frame_lengths != sizes(&run["expected_frame_lengths"])? {
        bail!(
            "frame_lengths {frame_lengths:?}, expected {}",
            run["expected_frame_lengths"]
        );
    }
    let features = outputs[0].to_plain_array_view::<f32>()?;
    let expected_shape = sizes(&run["expected_features_shape"])?;
    let expected = floats(&run["expected_features"])?;
    let (frames, dim) = (expected_shape[1], expected_shape[2]);
    let mut worst = 0.0f32;
    for (b, &length) in frame_lengths.iter().enumerate() {
        for t in 0..length {
            for d in 0..dim {
                let ours = expected[(b * frames + t) * dim + d];
                worst = worst.max((features[[b, t, d]] - ours).abs());
            }
        }
    }
    let view = outputs[2].to_plain_array_view::<f32>()?;
    let mut got: Vec<f32> = view.iter().copied().collect();
    if ctc {
        let (time, classes) = (view.shape()[1], view.shape()[2]);
        for (b, &length) in frame_lengths.iter().enumerate() {
            for t in length..time {
                got[(b * time + t) * classes..][..classes].fill(0.0);
            }
        }
    }
    Ok((got, worst))
}

/// The step graph fed one frame at a time from zero states.
fn run_frame_by_frame(path: &Path, run: &Value, lstm: bool) -> anyhow::Result<Vec<f32>> {
    let shape = sizes(&run["features_shape"])?;
    let (batch, time, features) = (shape[0], shape[1], shape[2]);
    let x = floats(&run["features"])?;
    let state_shape = sizes(&run["state_shape"])?;
    let state = (f32::datum_type(), state_shape.clone());
    let mut inputs = vec![(f32::datum_type(), vec![batch, 1, features]), state.clone()];
    if lstm {
        inputs.push(state);
    }
    let plan = plan(path, &inputs)?;
    let zeros = || tensor(&state_shape, vec![0.0; state_shape.iter().product()]);
    let (mut h, mut c) = (zeros()?, zeros()?);
    let mut per_sequence = vec![Vec::new(); batch];
    for t in 0..time {
        let frame: Vec<f32> = (0..batch)
            .flat_map(|b| x[(b * time + t) * features..][..features].to_vec())
            .collect();
        let mut inputs = tvec![
            tensor(&[batch, 1, features], frame)?.into(),
            h.clone().into()
        ];
        if lstm {
            inputs.push(c.clone().into());
        }
        let outputs = plan.run(inputs)?;
        let step = outputs[0].to_plain_array_view::<f32>()?;
        for (b, out) in per_sequence.iter_mut().enumerate() {
            out.extend(step.slice(tract_ndarray::s![b, 0, ..]).iter().copied());
        }
        h = outputs[1].clone().into_tensor();
        if lstm {
            c = outputs[2].clone().into_tensor();
        }
    }
    Ok(per_sequence.concat())
}

fn largest_difference(got: &[f32], expected: &[f32]) -> anyhow::Result<f32> {
    if got.len() != expected.len() {
        bail!("{} values, expected {}", got.len(), expected.len());
    }
    Ok(got
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max))
}

/// What one file gave: the largest difference of each output, whether all are within
/// their tolerances, and the runs skipped.
struct Outcome {
    worst: Value,
    ok: bool,
    skipped: usize,
}

fn check(path: &Path) -> anyhow::Result<Outcome> {
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(path.with_extension("json"))?)?;
    let form = record["form"].as_str().unwrap_or_default();
    let ctc = record["ctc"].as_bool().unwrap_or(false);
    if let Some(reason) = unsupported(path)? {
        let runs = record["runs"].as_array().map_or(0, Vec::len);
        return Ok(Outcome {
            worst: json!({"not_run": reason}),
            ok: true,
            skipped: runs,
        });
    }
    let lstm = record["lstm"].as_bool().unwrap_or(false);
    let (mut worst_output, mut worst_features) = (0.0f32, None::<f32>);
    let (mut ok, mut skipped) = (true, 0);
    for run in record["runs"].as_array().context("runs")? {
        if !run["h_0"].is_null() && form == "sequences" {
            skipped += 1;
            continue;
        }
        let got = match form {
            "streaming" => run_frame_by_frame(path, run, lstm)?,
            "waveform" => {
                let (got, difference) = run_waveform(path, run, ctc)?;
                let tolerance = run["features_tolerance"]
                    .as_f64()
                    .context("features_tolerance")?;
                ok &= difference as f64 <= tolerance;
                worst_features = Some(worst_features.unwrap_or(0.0).max(difference));
                got
            }
            _ => run_sequences(path, run, ctc)?,
        };
        let difference = largest_difference(&got, &floats(&run["expected"])?)?;
        ok &= difference as f64 <= run["tolerance"].as_f64().unwrap_or(TOLERANCE as f64);
        worst_output = worst_output.max(difference);
    }
    let mut worst = json!({ record["output"].as_str().unwrap_or("output"): worst_output });
    if let Some(features) = worst_features {
        worst["features"] = json!(features);
    }
    Ok(Outcome { worst, ok, skipped })
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).context("usage: tract-check DIR")?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no .onnx files in {dir}");
    }
    let mut failed = 0;
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let line = match check(path) {
            Ok(Outcome { worst, ok, skipped }) => {
                failed += !ok as usize;
                json!({"file": name, "max_abs_diff": worst, "skipped_runs": skipped, "ok": ok, "tract": "0.23.9"})
            }
            Err(e) => {
                failed += 1;
                json!({"file": name, "error": format!("{e:#}"), "ok": false})
            }
        };
        println!("{line}");
    }
    println!("{}", json!({"files": files.len(), "failed": failed}));
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
