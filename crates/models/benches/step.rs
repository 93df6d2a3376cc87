//! One step of a stream at batch 1, the state carried from call to call, as a live
//! recogniser runs the recurrent stack (`train::listen`): ours against PyTorch's `nn.LSTM` /
//! `nn.GRU` called on one frame at a time with `(h, c)` carried, on one thread each.
//!
//! ```sh
//! cargo bench -p models --bench step
//! BENCH_PYTHON=path/to/python cargo bench -p models --bench step   # with PyTorch beside
//! ```
//!
//! The shapes are the streaming digit model's (`experiments/digit-strings-streaming.toml`:
//! 13 MFCCs in, two layers) at hidden sizes 128 and 256. `BENCH_ROUNDS` (default 5) rounds
//! alternate ours and PyTorch; each reports the median of `BENCH_REPEATS` (default 9)
//! streams of 200 steps, and the ratio is the median of the rounds' ratios.

use burn::tensor::{Distribution, Tensor};
use burn_ndarray::NdArray;
use models::{CellKind, RecurrentConfig, RecurrentState};

mod common;
use common::{env_or, median, median_seconds, pytorch_reference};

const STEPS: usize = 200;
const INPUT: usize = 13;
const LAYERS: usize = 2;

/// Median microseconds per step over `repeats` streams of `STEPS` one-frame calls.
fn ours(cell: &CellKind, hidden: usize, repeats: usize) -> f64 {
    let device = Default::default();
    let stack = RecurrentConfig::new(cell.clone(), INPUT, hidden)
        .with_num_layers(LAYERS)
        .init::<NdArray>(&device);
    let frames: Vec<Tensor<NdArray, 3>> = (0..STEPS)
        .map(|_| Tensor::random([1, 1, INPUT], Distribution::Default, &device))
        .collect();
    let stream = || {
        let mut state: Option<RecurrentState<NdArray, 3>> = None;
        for frame in &frames {
            let (output, next) = stack.forward(frame.clone(), state.take(), None);
            // Read the output, as a recogniser does each step.
            let _ = output.into_data();
            state = Some(next);
        }
    };
    1e6 * median_seconds(repeats, stream) / STEPS as f64
}

/// PyTorch's microseconds per step, when `BENCH_PYTHON` names a Python with torch.
fn pytorch(module: &str, hidden: usize, repeats: usize) -> Option<f64> {
    let args = [
        "--step".to_string(),
        format!("--module={module}"),
        "--threads=1".into(),
        "--batch=1".into(),
        format!("--time={STEPS}"),
        format!("--input-size={INPUT}"),
        format!("--hidden-size={hidden}"),
        format!("--num-layers={LAYERS}"),
        format!("--repeats={repeats}"),
    ];
    pytorch_reference(&args)?.parse().ok()
}

fn main() {
    let repeats = env_or("BENCH_REPEATS", 9);
    let rounds = env_or("BENCH_ROUNDS", 5).max(1);
    println!(
        "CPU: {}, {}; one thread each",
        isa::cpu_model(),
        isa::cpu_flags()
    );
    println!(
        "kernels: {:?}; batch 1, {INPUT} inputs, {LAYERS} layers, one frame per call with the state carried; µs per step, median of {rounds} rounds",
        models::cpu_isa()
    );
    println!("| cell | hidden | ours µs | PyTorch µs | PyTorch ÷ ours |");
    println!("|---|---|---|---|---|");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    for (name, cell) in [("lstm", CellKind::lstm()), ("gru", CellKind::gru())] {
        for hidden in [128, 256] {
            let (mut mine, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let us = pool.install(|| ours(&cell, hidden, repeats));
                mine.push(us);
                if let Some(torch) = pytorch(name, hidden, repeats) {
                    theirs.push(torch);
                    ratios.push(torch / us);
                }
            }
            let (torch, ratio) = if theirs.is_empty() {
                ("—".to_string(), "—".to_string())
            } else {
                (
                    format!("{:.1}", median(theirs)),
                    format!("{:.2}", median(ratios)),
                )
            };
            println!(
                "| {name} | {hidden} | {:.1} | {torch} | {ratio} |",
                median(mine)
            );
        }
    }
}
