//! Inference at int8 and bf16 ([`QuantizedRecurrent`]) against our f32 module and PyTorch's
//! dynamically quantised `nn.LSTM` / `nn.GRU` (`quantize_dynamic(..., dtype=torch.qint8)`),
//! at the two shapes of the `recurrent` bench (every core) and one step at a time at batch 1
//! (the `step` bench's streaming shape, one thread).
//!
//! ```sh
//! cargo bench -p models --bench quantized
//! BENCH_PYTHON=path/to/python cargo bench -p models --bench quantized   # with PyTorch beside
//! ```
//!
//! `BENCH_ROUNDS` (default 3) rounds alternate ours and PyTorch; each reports the median of
//! `BENCH_REPEATS` (default 7) runs, and each ratio is the median of the rounds' ratios.
//! `BENCH_BF16=widened` runs bf16 widened to f32 where the CPU has AVX-512 BF16.
//! Printed too: the CPU's flags and the instruction sets the f32 and int8 kernels use.

use burn::tensor::{Distribution, Tensor};
use burn_ndarray::NdArray;
use models::{CellKind, Precision, QuantizedRecurrent, Recurrent, RecurrentConfig, RecurrentState};

mod common;
use common::{SHAPES, env_or, median, median_seconds, pytorch_reference};

/// The streaming shape: 13 MFCCs in, two layers, one frame per call.
const STEP_INPUT: usize = 13;
const STEP_LAYERS: usize = 2;
const STEPS: usize = 200;

/// The module at one precision: ours in f32, or quantised.
enum Variant {
    F32(Recurrent<NdArray>),
    Quantized(QuantizedRecurrent),
}

impl Variant {
    fn forward(
        &self,
        x: Tensor<NdArray, 3>,
        state: Option<RecurrentState<NdArray, 3>>,
    ) -> (Tensor<NdArray, 3>, RecurrentState<NdArray, 3>) {
        match self {
            Variant::F32(m) => m.forward(x, state, None),
            Variant::Quantized(m) => m.forward(x, state, None),
        }
    }
}

/// Our variants: the f32 module, then `QuantizedRecurrent` at f32 (the same kernels and
/// bits, without the module's per-call work), bf16 and int8, with their weight bytes.
fn variants(module: &Recurrent<NdArray>) -> Vec<(Variant, usize)> {
    let f32_bytes = module.quantize(Precision::F32).unwrap().weight_bytes();
    let mut all = vec![(Variant::F32(module.clone()), f32_bytes)];
    for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
        let quantized = module.quantize(precision).unwrap();
        let bytes = quantized.weight_bytes();
        all.push((Variant::Quantized(quantized), bytes));
    }
    all
}

/// PyTorch's dynamically quantised module: forward ms, or with `--step` µs per step.
fn pytorch(args: &[String]) -> Option<f64> {
    let mut args = args.to_vec();
    args.push("--quantize=qint8".into());
    pytorch_reference(&args)?.parse().ok()
}

/// Times per variant (ours: f32 module, packed f32, bf16, int8; then PyTorch's), median
/// over the rounds, and the ratios f32 ÷ int8, packed f32 ÷ int8, f32 ÷ bf16 and
/// PyTorch ÷ int8, medians of the rounds' ratios.
struct Row {
    times: Vec<Vec<f64>>,
    ratios: [Vec<f64>; 4],
}

impl Row {
    fn new() -> Self {
        Self {
            times: vec![Vec::new(); 5],
            ratios: Default::default(),
        }
    }

    fn add_round(&mut self, ours: &[f64], theirs: Option<f64>) {
        for (times, t) in self.times.iter_mut().zip(ours) {
            times.push(*t);
        }
        let [f32, packed, bf16, int8] = ours.try_into().expect("four variants");
        self.ratios[0].push(f32 / int8);
        self.ratios[1].push(packed / int8);
        self.ratios[2].push(f32 / bf16);
        if let Some(t) = theirs {
            self.times[4].push(t);
            self.ratios[3].push(t / int8);
        }
    }

    fn cells(&self, digits: usize) -> (Vec<String>, Vec<String>) {
        let show = |v: &Vec<f64>, d: usize| {
            if v.is_empty() {
                "—".to_string()
            } else {
                format!("{:.*}", d, median(v.clone()))
            }
        };
        (
            self.times.iter().map(|t| show(t, digits)).collect(),
            self.ratios.iter().map(|r| show(r, 2)).collect(),
        )
    }
}

fn forward_table(repeats: usize, rounds: usize) {
    println!(
        "\nforward, every core (PyTorch: 2 threads); ms, median of {rounds} rounds; weights in MB (f32 / bf16 / int8, as stored)"
    );
    println!(
        "| cell | shape | f32 ms | packed f32 ms | bf16 ms | int8 ms | PyTorch qint8 ms | f32 ÷ int8 | packed f32 ÷ int8 | f32 ÷ bf16 | PyTorch qint8 ÷ int8 | weights MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let device = Default::default();
    let only = std::env::var("BENCH_SHAPES").ok();
    for (name, cell) in [("lstm", CellKind::lstm()), ("gru", CellKind::gru())] {
        for shape in SHAPES
            .iter()
            .filter(|s| only.as_deref().is_none_or(|o| o == s.name))
        {
            let module = RecurrentConfig::new(cell.clone(), shape.input_size, shape.hidden_size)
                .with_num_layers(shape.num_layers)
                .with_bidirectional(shape.bidirectional)
                .init::<NdArray>(&device);
            let all = variants(&module);
            let dims = [shape.batch, shape.time, shape.input_size];
            let x = Tensor::<NdArray, 3>::random(dims, Distribution::Default, &device);
            let mut row = Row::new();
            for _ in 0..rounds {
                let ours: Vec<f64> = all
                    .iter()
                    .map(|(v, _)| {
                        1e3 * median_seconds(repeats, || drop(v.forward(x.clone(), None)))
                    })
                    .collect();
                let mut args = vec![
                    format!("--module={name}"),
                    "--threads=2".into(),
                    format!("--repeats={repeats}"),
                ];
                args.extend(shape.pytorch_args());
                row.add_round(&ours, pytorch(&args));
            }
            let (times, ratios) = row.cells(1);
            let megabytes: Vec<String> = all[1..]
                .iter()
                .map(|(_, bytes)| format!("{:.2}", *bytes as f64 / 1e6))
                .collect();
            println!(
                "| {name} | {} | {} | {} | {} |",
                shape.name,
                times.join(" | "),
                ratios.join(" | "),
                megabytes.join(" / ")
            );
        }
    }
}

fn step_table(repeats: usize, rounds: usize) {
    println!(
        "\nbatch 1, {STEP_INPUT} inputs, {STEP_LAYERS} layers, one frame per call with the state carried, one thread each; µs per step, median of {rounds} rounds"
    );
    println!(
        "| cell | hidden | f32 µs | packed f32 µs | bf16 µs | int8 µs | PyTorch qint8 µs | f32 ÷ int8 | packed f32 ÷ int8 | f32 ÷ bf16 | PyTorch qint8 ÷ int8 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let device = Default::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    for (name, cell) in [("lstm", CellKind::lstm()), ("gru", CellKind::gru())] {
        for hidden in [128, 256] {
            let module = RecurrentConfig::new(cell.clone(), STEP_INPUT, hidden)
                .with_num_layers(STEP_LAYERS)
                .init::<NdArray>(&device);
            let all = variants(&module);
            let frames: Vec<Tensor<NdArray, 3>> = (0..STEPS)
                .map(|_| Tensor::random([1, 1, STEP_INPUT], Distribution::Default, &device))
                .collect();
            let stream = |variant: &Variant| {
                let mut state = None;
                for frame in &frames {
                    let (output, next) = variant.forward(frame.clone(), state.take());
                    let _ = output.into_data();
                    state = Some(next);
                }
            };
            let mut row = Row::new();
            for _ in 0..rounds {
                let ours: Vec<f64> = all
                    .iter()
                    .map(|(v, _)| {
                        1e6 * pool.install(|| median_seconds(repeats, || stream(v))) / STEPS as f64
                    })
                    .collect();
                let args: Vec<String> = vec![
                    "--step".into(),
                    format!("--module={name}"),
                    "--batch=1".into(),
                    format!("--time={STEPS}"),
                    format!("--input-size={STEP_INPUT}"),
                    format!("--hidden-size={hidden}"),
                    format!("--num-layers={STEP_LAYERS}"),
                    "--threads=1".into(),
                    format!("--repeats={repeats}"),
                ];
                row.add_round(&ours, pytorch(&args));
            }
            let (times, ratios) = row.cells(1);
            println!(
                "| {name} | {hidden} | {} | {} |",
                times.join(" | "),
                ratios.join(" | ")
            );
        }
    }
}

fn main() {
    let repeats = env_or("BENCH_REPEATS", 7);
    let rounds = env_or("BENCH_ROUNDS", 3).max(1);
    if std::env::var("BENCH_BF16").is_ok_and(|isa| isa == "widened") {
        isa::set_bf16_isa_limit(Some(isa::Bf16Isa::Widened));
    }
    println!(
        "CPU: {} ({} threads), {}",
        isa::cpu_model(),
        std::thread::available_parallelism().map_or(1, usize::from),
        isa::cpu_flags()
    );
    println!(
        "kernels: f32 {:?}, int8 {:?}, bf16 {:?}",
        models::cpu_isa(),
        isa::Int8Isa::detected(),
        isa::Bf16Isa::detected()
    );
    forward_table(repeats, rounds);
    step_table(repeats, rounds);
}
