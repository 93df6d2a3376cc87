//! Backend-swapping benchmark: the same model and batch on each backend, our recurrent
//! modules against burn's built-in `nn::Lstm` / `nn::Gru`, in training steps per second.

use std::time::Instant;

use burn::nn::{GruConfig, LstmConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use models::{CellKind, RecurrentConfig};

use crate::backend::{BackendError, BackendKind, OnBackend, run_on, wgpu_adapter};

/// The problem size of one training step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchShape {
    /// Sequences per batch.
    pub batch: usize,
    /// Steps per sequence.
    pub time: usize,
    /// Features per step.
    pub input: usize,
    /// Hidden units.
    pub hidden: usize,
}

/// One measured module on one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// E.g. `lstm (ours)`, `gru (burn nn::Gru)`.
    pub module: String,
    /// Forward + backward passes per second (median over the repeats).
    pub steps_per_second: f64,
}

/// Times forward+backward (loss = sum of the outputs) of our LSTM and GRU and burn's, on
/// backend `B`, `repeats` times each after one warm-up; the device is synchronised before
/// each clock reading, so GPU work is counted.
///
/// ```
/// use train::bench::{BenchShape, bench_modules};
/// let shape = BenchShape { batch: 2, time: 3, input: 4, hidden: 5 };
/// let rows = bench_modules::<burn_autodiff::Autodiff<burn_ndarray::NdArray>>(shape, 1, &Default::default());
/// assert_eq!(rows.len(), 4);
/// assert!(rows.iter().all(|row| row.steps_per_second > 0.0));
/// ```
pub fn bench_modules<B: AutodiffBackend>(
    shape: BenchShape,
    repeats: usize,
    device: &B::Device,
) -> Vec<BenchRow> {
    let BenchShape {
        batch,
        time,
        input,
        hidden,
    } = shape;
    let x = Tensor::<B, 3>::random([batch, time, input], Distribution::Default, device);
    let ours_lstm = RecurrentConfig::new(CellKind::lstm(), input, hidden).init::<B>(device);
    let ours_gru = RecurrentConfig::new(CellKind::gru(), input, hidden).init::<B>(device);
    let burn_lstm = LstmConfig::new(input, hidden, true).init::<B>(device);
    let burn_gru = GruConfig::new(input, hidden, true).init::<B>(device);
    type Forward<'a, B> = Box<dyn Fn() -> Tensor<B, 3> + 'a>;
    let modules: Vec<(&str, Forward<B>)> = vec![
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
    modules
        .into_iter()
        .map(|(module, forward)| {
            let step = || {
                let _grads = forward().sum().backward();
                B::sync(device).expect("the device finishes its work");
            };
            step();
            let mut seconds: Vec<f64> = (0..repeats.max(1))
                .map(|_| {
                    let started = Instant::now();
                    step();
                    started.elapsed().as_secs_f64()
                })
                .collect();
            seconds.sort_by(f64::total_cmp);
            BenchRow {
                module: module.to_string(),
                steps_per_second: 1.0 / seconds[seconds.len() / 2],
            }
        })
        .collect()
}

/// The table the `bench` subcommand prints: each module's steps/s per backend, the ratio
/// to burn's built-in module on the same backend, and the ratio of each backend to the first.
pub fn format_table(results: &[(String, Vec<BenchRow>)]) -> String {
    let mut table = format!(
        "{:<10} {:<22} {:>10} {:>12} {:>14}\n",
        "backend", "module", "steps/s", "× burn's", "× first backend"
    );
    let first = results
        .first()
        .map(|(_, rows)| rows.as_slice())
        .unwrap_or(&[]);
    for (backend, rows) in results {
        for row in rows {
            let family = row.module.split(' ').next();
            let baseline = rows
                .iter()
                .find(|r| r.module.contains("burn") && r.module.split(' ').next() == family)
                .map_or(f64::NAN, |r| r.steps_per_second);
            let reference = first
                .iter()
                .find(|r| r.module == row.module)
                .map_or(f64::NAN, |r| r.steps_per_second);
            table.push_str(&format!(
                "{backend:<10} {:<22} {:>10.2} {:>12.2} {:>14.2}\n",
                row.module,
                row.steps_per_second,
                row.steps_per_second / baseline,
                row.steps_per_second / reference,
            ));
        }
    }
    table
}

/// The `experiment bench` report: a header line, then [`format_table`] of every backend in
/// `backends` (ndarray, and wgpu when an adapter exists, when empty).
pub fn bench_report(
    backends: &[BackendKind],
    shape: BenchShape,
    repeats: usize,
) -> Result<String, BackendError> {
    let backends: Vec<BackendKind> = match backends.is_empty() {
        true => std::iter::once(BackendKind::Ndarray)
            .chain(wgpu_adapter().map(|_| BackendKind::Wgpu))
            .collect(),
        false => backends.to_vec(),
    };
    let BenchShape {
        batch,
        time,
        input,
        hidden,
    } = shape;
    let mut results = Vec::new();
    for backend in backends {
        let rows = run_on(backend, BenchJob { shape, repeats })?;
        results.push((backend.to_string(), rows));
    }
    Ok(format!(
        "forward+backward steps/s, batch {batch}, {time} steps, {input} inputs, {hidden} hidden, median of {repeats}\n{}",
        format_table(&results)
    ))
}

/// [`bench_modules`] on whichever backend [`run_on`] picks.
struct BenchJob {
    shape: BenchShape,
    repeats: usize,
}

impl OnBackend for BenchJob {
    type Output = Vec<BenchRow>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        bench_modules::<B>(self.shape, self.repeats, &device)
    }
}
