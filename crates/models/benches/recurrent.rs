//! Every cell of `models` against PyTorch's `nn.RNN` / `nn.LSTM` / `nn.GRU` on the CPU, at
//! two shapes, forward (inference, `NdArray`) and forward+backward (training,
//! `Autodiff<NdArray>`), both using every core.
//!
//! ```sh
//! cargo bench -p models --bench recurrent
//! BENCH_PYTHON=path/to/python cargo bench -p models --bench recurrent   # with PyTorch beside
//! ```
//!
//! With `BENCH_PYTHON` set to a Python that has torch, `pytorch_reference.py` (beside this
//! file) runs in the same invocation, right after each of our rows, and the table gets its
//! times and the ratio PyTorch / ours (above 1: we are faster). `BENCH_REPEATS` sets the
//! repetitions (median reported), `BENCH_ROUNDS` how many times each row alternates ours
//! and PyTorch (default 3; the medians over the rounds are reported, and the ratio is the
//! median of each round's ratio), `BENCH_ONLY` keeps the rows whose name contains it,
//! `BENCH_SHAPES=small` or `large` runs one shape. Also printed: the CPU's SIMD flags, the
//! instruction set the kernels use, GFLOP/s of the matrix products against the machine's
//! sgemm peak, and the peak heap of forward+backward.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use burn_autodiff::Autodiff;
use burn_ndarray::NdArray;
use models::{CellKind, Nonlinearity, RecurrentConfig};

mod common;
use common::{SHAPES, Shape, median_seconds, pytorch_reference};

type AB = Autodiff<NdArray>;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Our cells, each with the PyTorch module that computes the same or the nearest thing.
fn cells() -> Vec<(&'static str, CellKind, &'static str)> {
    let lstm = |peephole, coupled_input_forget| CellKind::Lstm {
        peephole,
        coupled_input_forget,
        unit_forget_bias: false,
        chrono_init: None,
    };
    vec![
        ("rnn_tanh", CellKind::rnn(Nonlinearity::Tanh), "rnn_tanh"),
        ("rnn_relu", CellKind::rnn(Nonlinearity::Relu), "rnn_relu"),
        (
            "rnn_sigmoid",
            CellKind::rnn(Nonlinearity::Sigmoid),
            "rnn_tanh",
        ),
        ("lstm", lstm(false, false), "lstm"),
        ("lstm_peephole", lstm(true, false), "lstm"),
        ("lstm_coupled", lstm(false, true), "lstm"),
        ("gru", CellKind::gru(), "gru"),
        (
            "gru_reset_before",
            CellKind::Gru { reset_after: false },
            "gru",
        ),
    ]
}

fn median_ms_of(repeats: usize, run: impl FnMut()) -> f64 {
    1e3 * median_seconds(repeats, run)
}

fn model<B: Backend>(cell: &CellKind, shape: &Shape) -> models::Recurrent<B> {
    RecurrentConfig::new(cell.clone(), shape.input_size, shape.hidden_size)
        .with_num_layers(shape.num_layers)
        .with_bidirectional(shape.bidirectional)
        .init::<B>(&Default::default())
}

/// Our forward (no autodiff), forward+backward, and the peak heap of forward+backward.
fn ours(cell: &CellKind, shape: &Shape, repeats: usize) -> (f64, f64, usize) {
    let dims = [shape.batch, shape.time, shape.input_size];
    let device = Default::default();
    let inference = model::<NdArray>(cell, shape);
    let x = Tensor::<NdArray, 3>::random(dims, Distribution::Default, &device);
    let forward = median_ms_of(repeats, || {
        let _ = inference.forward(x.clone(), None, None).0.into_data();
    });
    let training = model::<AB>(cell, shape);
    let x = Tensor::<AB, 3>::random(dims, Distribution::Default, &device);
    let step = || {
        let grads = training.forward(x.clone(), None, None).0.sum().backward();
        drop(grads);
    };
    let both = median_ms_of(repeats, step);
    // The kernels' buffer cache would otherwise hide the step's buffers in `base`.
    models::empty_cache();
    let base = IN_USE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    step();
    (forward, both, PEAK.load(Ordering::Relaxed) - base)
}

/// PyTorch's forward and forward+backward milliseconds and peak bytes, from
/// `pytorch_reference.py`, when `BENCH_PYTHON` names a Python with torch.
fn pytorch(module: &str, shape: &Shape, repeats: usize, threads: usize) -> Option<(f64, f64, f64)> {
    let mut args = vec![
        format!("--module={module}"),
        format!("--threads={threads}"),
        format!("--repeats={repeats}"),
    ];
    args.extend(shape.pytorch_args());
    let fields: Vec<f64> = pytorch_reference(&args)?
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    (fields.len() == 3).then(|| (fields[0], fields[1], fields[2]))
}

/// The machine's sgemm peak on every core, which the GFLOP/s of the table are compared
/// with: `torch.mm` at 2048² when `BENCH_PYTHON` has torch (MKL or OpenBLAS, the fastest
/// sgemm at hand), else burn-ndarray's matmul at 1024².
fn sgemm_peak(threads: usize) -> (f64, &'static str) {
    if let Some(peak) = pytorch_peak(threads) {
        return (peak, "torch.mm, 2048²");
    }
    let n = 1024;
    let device = Default::default();
    let a = Tensor::<NdArray, 2>::random([n, n], Distribution::Default, &device);
    let b = Tensor::<NdArray, 2>::random([n, n], Distribution::Default, &device);
    let ms = median_ms_of(5, || {
        let _ = a.clone().matmul(b.clone()).into_data();
    });
    (
        2.0 * (n * n * n) as f64 / (ms * 1e-3) / 1e9,
        "burn-ndarray matmul, 1024²",
    )
}

fn pytorch_peak(threads: usize) -> Option<f64> {
    pytorch_reference(&["--peak".into(), format!("--threads={threads}")])?
        .parse()
        .ok()
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let shapes = std::env::var("BENCH_SHAPES").unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (peak, peak_source) = sgemm_peak(threads);
    println!(
        "CPU: {} ({threads} threads), {}",
        isa::cpu_model(),
        isa::cpu_flags()
    );
    println!(
        "kernels: {:?}; sgemm peak {peak:.0} GFLOP/s ({peak_source}, {threads} threads); median of {repeats} runs, then of {rounds} rounds",
        models::cpu_isa()
    );
    println!(
        "ratio = median over the rounds of PyTorch time / ours (above 1: ours is faster); GFLOP/s and % of peak are ours"
    );
    for shape in SHAPES
        .iter()
        .filter(|s| shapes.is_empty() || s.name == shapes)
    {
        println!("\n{} ({})", shape.name, shape.label());
        println!(
            "{:<18} {:>9} {:>9} {:>6} {:>10} {:>10} {:>6} {:>13} {:>11} {:>11}",
            "cell",
            "fwd ms",
            "torch",
            "ratio",
            "fwd+bwd ms",
            "torch",
            "ratio",
            "GFLOP/s (%)",
            "peak MB",
            "torch MB"
        );
        for (name, cell, module) in cells().iter().filter(|c| c.0.contains(&only)) {
            // Ours and PyTorch one after the other, `rounds` times: this VM's speed drifts
            // by tens of percent within minutes, so each round's ratio compares neighbours
            // in time, and the table gives the medians over the rounds.
            let mut runs = Vec::with_capacity(rounds);
            for _ in 0..rounds {
                let (forward, both, heap) = ours(cell, shape, repeats);
                let torch = pytorch(module, shape, repeats, threads).unwrap_or((
                    f64::NAN,
                    f64::NAN,
                    f64::NAN,
                ));
                runs.push(([forward, both, torch.0, torch.1], heap, torch.2));
            }
            let median = |value: &dyn Fn(&[f64; 4]) -> f64| {
                let mut values: Vec<f64> = runs.iter().map(|run| value(&run.0)).collect();
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let (forward, both) = (median(&|r| r[0]), median(&|r| r[1]));
            let (t_fwd, t_both) = (median(&|r| r[2]), median(&|r| r[3]));
            let (heap, t_mb) = (runs[0].1, runs[0].2);
            let flop = 3.0 * shape.forward_flop(cell.gates());
            let gflops = flop / (both * 1e-3) / 1e9;
            println!(
                "{:<18} {:>9.2} {:>9.2} {:>6.2} {:>10.2} {:>10.2} {:>6.2} {:>7.0} ({:>3.0}%) {:>11.1} {:>11.1}",
                name,
                forward,
                t_fwd,
                median(&|r| r[2] / r[0]),
                both,
                t_both,
                median(&|r| r[3] / r[1]),
                gflops,
                100.0 * gflops / peak,
                heap as f64 / 1e6,
                t_mb
            );
        }
    }
}
