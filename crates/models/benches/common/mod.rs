//! What the benches share: the two forward shapes, PyTorch's side (`pytorch_reference.py`
//! under `BENCH_PYTHON`), medians and the `BENCH_*` settings.
#![allow(dead_code)]

use std::process::Command;
use std::time::Instant;

/// One benchmark shape (PyTorch's argument names).
#[derive(Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub batch: usize,
    pub time: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
}

pub const SHAPES: [Shape; 2] = [
    Shape {
        name: "small",
        batch: 32,
        time: 100,
        input_size: 40,
        hidden_size: 128,
        num_layers: 1,
        bidirectional: false,
    },
    Shape {
        name: "large",
        batch: 64,
        time: 200,
        input_size: 80,
        hidden_size: 256,
        num_layers: 2,
        bidirectional: true,
    },
];

impl Shape {
    /// Multiply-adds ×2 of the matrix products of one forward pass.
    pub fn forward_flop(&self, gates: usize) -> f64 {
        let directions = if self.bidirectional { 2 } else { 1 };
        let h = self.hidden_size;
        (0..self.num_layers)
            .map(|layer| {
                let input = if layer == 0 {
                    self.input_size
                } else {
                    directions * h
                };
                2.0 * (self.batch * self.time * (input + h) * gates * h * directions) as f64
            })
            .sum()
    }

    pub fn label(&self) -> String {
        format!(
            "B{} T{} {}→{}{}{}",
            self.batch,
            self.time,
            self.input_size,
            self.hidden_size,
            if self.num_layers > 1 {
                format!(", {} layers", self.num_layers)
            } else {
                String::new()
            },
            if self.bidirectional {
                ", bidirectional"
            } else {
                ""
            }
        )
    }
}

impl Shape {
    /// The shape as `pytorch_reference.py`'s arguments.
    pub fn pytorch_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--batch={}", self.batch),
            format!("--time={}", self.time),
            format!("--input-size={}", self.input_size),
            format!("--hidden-size={}", self.hidden_size),
            format!("--num-layers={}", self.num_layers),
        ];
        if self.bidirectional {
            args.push("--bidirectional".into());
        }
        args
    }
}

/// `pytorch_reference.py ARGS`'s standard output, trimmed, when `BENCH_PYTHON` names a
/// Python with torch; `None` (and the script's errors on stderr) otherwise.
pub fn pytorch_reference(args: &[String]) -> Option<String> {
    let python = std::env::var("BENCH_PYTHON").ok()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/pytorch_reference.py");
    let output = Command::new(python)
        .env_remove("OPENBLAS_CORETYPE")
        .arg(script)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "pytorch_reference.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The setting `name` from the environment, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds of one `run`, the median of `repeats` after one warm-up run.
pub fn median_seconds(repeats: usize, mut run: impl FnMut()) -> f64 {
    run();
    median(
        (0..repeats)
            .map(|_| {
                let start = Instant::now();
                run();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}
