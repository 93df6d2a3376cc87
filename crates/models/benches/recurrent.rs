//! Our LSTM and GRU against burn 0.21's built-in `nn::Lstm` / `nn::Gru`, measured side by
//! side in one run on `Autodiff<NdArray>` at batch 32, 100 steps, 40 inputs, 128 hidden.
//!
//! `cargo bench -p models --bench recurrent` (set `BENCH_REPEATS` for more repetitions).
//! Prints the median milliseconds per batch of forward and forward+backward passes.

use std::time::Instant;

use burn::nn::{GruConfig, LstmConfig};
use burn::tensor::{Distribution, Tensor};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use models::{CellKind, RecurrentConfig};

type AB = Autodiff<NdArray>;
const BATCH: usize = 32;
const TIME: usize = 100;
const INPUT: usize = 40;
const HIDDEN: usize = 128;

/// A module's forward pass over the shared input, by name.
type Row<'a> = (&'static str, Box<dyn Fn() -> Tensor<AB, 3> + 'a>);

fn median_ms(repeats: usize, mut run: impl FnMut()) -> f64 {
    run(); // warm-up
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let device = Default::default();
    let x = Tensor::<AB, 3>::random([BATCH, TIME, INPUT], Distribution::Default, &device);

    let ours_lstm = RecurrentConfig::new(CellKind::lstm(), INPUT, HIDDEN).init::<AB>(&device);
    let ours_gru = RecurrentConfig::new(CellKind::gru(), INPUT, HIDDEN).init::<AB>(&device);
    let burn_lstm = LstmConfig::new(INPUT, HIDDEN, true).init::<AB>(&device);
    let burn_gru = GruConfig::new(INPUT, HIDDEN, true).init::<AB>(&device);

    let rows: Vec<Row> = vec![
        (
            "lstm (ours)",
            Box::new(|| ours_lstm.forward(x.clone(), None, None).0),
        ),
        (
            "lstm (burn nn::Lstm)",
            Box::new(|| burn_lstm.forward(x.clone(), None).0),
        ),
        (
            "gru (ours)",
            Box::new(|| ours_gru.forward(x.clone(), None, None).0),
        ),
        (
            "gru (burn nn::Gru)",
            Box::new(|| burn_gru.forward(x.clone(), None)),
        ),
    ];
    println!(
        "batch {BATCH}, {TIME} steps, {INPUT} inputs, {HIDDEN} hidden, Autodiff<NdArray>, median of {repeats}"
    );
    println!(
        "{:<24} {:>12} {:>20}",
        "module", "forward ms", "forward+backward ms"
    );
    for (name, forward) in &rows {
        let fwd = median_ms(repeats, || {
            let _ = forward().into_data();
        });
        let both = median_ms(repeats, || {
            let _ = forward().sum().backward();
        });
        println!("{name:<24} {fwd:>12.1} {both:>20.1}");
    }
}
