//! Helpers shared by the model tests.
#![allow(dead_code)]

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use models::{CellKind, Nonlinearity};

/// Every cell and option the crate offers, by name.
pub fn all_cells() -> Vec<(&'static str, CellKind)> {
    let lstm = |peephole, coupled_input_forget| CellKind::Lstm {
        peephole,
        coupled_input_forget,
        unit_forget_bias: false,
        chrono_init: None,
    };
    vec![
        ("rnn_tanh", CellKind::rnn(Nonlinearity::Tanh)),
        ("rnn_relu", CellKind::rnn(Nonlinearity::Relu)),
        ("rnn_sigmoid", CellKind::rnn(Nonlinearity::Sigmoid)),
        ("lstm", lstm(false, false)),
        ("lstm_peephole", lstm(true, false)),
        ("lstm_coupled", lstm(false, true)),
        ("lstm_peephole_coupled", lstm(true, true)),
        ("gru_reset_after", CellKind::Gru { reset_after: true }),
        ("gru_reset_before", CellKind::Gru { reset_after: false }),
    ]
}

/// Deterministic pseudo-random values in [-1, 1) (a fixed LCG, so no RNG crate is needed).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn tensor<B: Backend, const D: usize>(
    shape: [usize; D],
    seed: u64,
    device: &B::Device,
) -> Tensor<B, D> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), shape), device)
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .abs()
        .max()
        .into_scalar()
        .to_string()
        .parse()
        .expect("a number")
}

/// A state dict of the same keys and shapes as `dict`, filled with fixed values in
/// `[-scale, scale)`, so tests do not depend on the random initialiser's draw.
pub fn fixed_weights(dict: &models::StateDict, scale: f32) -> models::StateDict {
    dict.iter()
        .enumerate()
        .map(|(index, (key, data))| {
            let shape = data.shape.clone();
            let n = shape.iter().product();
            let filled: Vec<f32> = values(n, 1000 + index as u64)
                .into_iter()
                .map(|v| v * scale)
                .collect();
            let fixed = TensorData::new(filled, shape).convert_dtype(data.dtype);
            (key.clone(), fixed)
        })
        .collect()
}
