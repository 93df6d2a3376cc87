//! Our LSTM and GRU against burn 0.21's built-in `nn::Lstm` / `nn::Gru`, measured side by
//! side in one run on `Autodiff<NdArray>` at batch 32, 100 steps, 40 inputs, 128 hidden.
//!
//! `cargo bench -p models --bench recurrent` (set `BENCH_REPEATS` for more repetitions,
//! `BENCH_ONLY=fused` to run only the rows whose name contains that text).
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

/// A module's forward pass over the shared input, by name, with its number of gate blocks.
type Row<'a> = (&'static str, usize, Box<dyn Fn() -> Tensor<AB, 3> + 'a>);

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

    let ours = |model: &'_ models::Recurrent<AB>, fused: bool| {
        let x = x.clone();
        let model = model.clone();
        move || {
            models::set_fused_kernels(fused);
            model.forward(x.clone(), None, None).0
        }
    };
    let rows: Vec<Row> = vec![
        ("lstm (ours, fused)", 4, Box::new(ours(&ours_lstm, true))),
        ("lstm (ours, generic)", 4, Box::new(ours(&ours_lstm, false))),
        (
            "lstm (burn nn::Lstm)",
            4,
            Box::new(|| burn_lstm.forward(x.clone(), None).0),
        ),
        ("gru (ours, fused)", 3, Box::new(ours(&ours_gru, true))),
        ("gru (ours, generic)", 3, Box::new(ours(&ours_gru, false))),
        (
            "gru (burn nn::Gru)",
            3,
            Box::new(|| burn_gru.forward(x.clone(), None)),
        ),
    ];
    println!(
        "batch {BATCH}, {TIME} steps, {INPUT} inputs, {HIDDEN} hidden, Autodiff<NdArray>, median of {repeats}"
    );
    println!(
        "{:<24} {:>11} {:>11} {:>13} {:>14}",
        "module", "forward ms", "fwd+bwd ms", "fwd+bwd GFLOP/s", "× burn fwd+bwd"
    );
    let mut results = Vec::new();
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, gates, forward) in rows.iter().filter(|row| row.0.contains(&only)) {
        let fwd = median_ms(repeats, || {
            let _ = forward().into_data();
        });
        let both = median_ms(repeats, || {
            let _ = forward().sum().backward();
        });
        results.push((*name, *gates, fwd, both));
    }
    for (name, gates, fwd, both) in &results {
        let family = name.split(' ').next();
        let burn_both = results
            .iter()
            .find(|row| row.0.contains("burn") && row.0.split(' ').next() == family)
            .map_or(f64::NAN, |row| row.3);
        // Matmul work of forward + backward: 3 × 2·B·T·(D + H)·G·H.
        let flop = 3.0 * 2.0 * (BATCH * TIME * (INPUT + HIDDEN) * gates * HIDDEN) as f64;
        let gflops = flop / (both * 1e-3) / 1e9;
        let ratio = burn_both / both;
        println!("{name:<24} {fwd:>11.1} {both:>11.1} {gflops:>13.1} {ratio:>14.2}");
    }
    models::set_fused_kernels(true);
}
