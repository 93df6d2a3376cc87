//! Recurrent sequence models for burn 0.21, generic over any `B: Backend`.
//!
//! Elman RNN, LSTM (with peephole and coupled input–forget variants) and GRU (reset before
//! or after the recurrent matmul), all driven by one time loop ([`Recurrent`]) that handles
//! layers, both directions, initial/final states, variable lengths and dropout. Weights are
//! fused and named as in PyTorch (`weight_ih_l0`, `bias_hh_l1_reverse`, …). On
//! burn-ndarray the time loop of each layer-direction runs as one fused kernel with a
//! hand-written backward (see [`Kernels`]); other backends run the generic driver.
//!
//! ```
//! use burn::tensor::Tensor;
//! use burn_ndarray::NdArray;
//! use models::{CellKind, RecurrentConfig};
//!
//! let device = Default::default();
//! let gru = RecurrentConfig::new(CellKind::gru(), 13, 32).init::<NdArray>(&device);
//! let x = Tensor::<NdArray, 3>::ones([2, 50, 13], &device);
//! // Two sequences of 50 and 30 valid steps.
//! let (y, h_n) = gru.forward(x, None, Some(&[50, 30]));
//! assert_eq!(y.dims(), [2, 50, 32]);
//! assert_eq!(h_n.hidden.dims(), [1, 2, 32]);
//! ```
//!
//! | module | what it does |
//! |---|---|
//! | [`cell`] | the cells ([`CellKind`]): one step of RNN, LSTM or GRU on a batch |
//! | `recurrent` | [`Recurrent`], the one time loop over layers and directions, and its config |
//! | `fused` | the fused CPU kernels for burn-ndarray, forward and hand-written backward; their int8 and bf16 products |
//! | `quantized`, `precision` | [`QuantizedRecurrent`]: inference with the weights at a [`Precision`] (int8, bf16) |
//! | [`head`] | the output layer `y_t = W_y h_t + b`, pooling, [`SequenceClassifier`] |
//! | `pytorch` | loading PyTorch's `state_dict` names and layouts |
//! | `state`, `weights` | initial and final states; fused weights and their initialisation |
//! | `alloc` | [`AlignedAllocator`], which makes burn-ndarray's results repeatable |
//!
//! A cell knows one step; `recurrent` drives it over time (or hands the whole loop to
//! `fused` on burn-ndarray); `quantized` packs a trained stack's weights once at a lower
//! precision and runs the same fused loop on them; `head` turns its outputs into classes. No module imports one
//! that imports it back (the workspace's `tests/layers.rs` checks it).

mod alloc;
pub mod cell;
mod error;
mod fused;
pub mod head;
mod precision;
mod pytorch;
mod quantized;
mod recurrent;
mod state;
mod weights;

pub use alloc::{ALLOCATION_ALIGNMENT, AlignedAllocator};
pub use cell::{Cell, CellKind, Nonlinearity};
pub use error::RecurrentError;
pub use fused::{
    CpuIsa, Kernels, cpu_isa, empty_cache, num_threads, set_cpu_isa_limit, set_num_threads,
};
pub use head::{
    OutputActivation, OutputLayer, Pooling, SequenceClassifier, SequenceClassifierConfig,
};
pub use precision::{Precision, UnknownPrecision};
pub use pytorch::{StateDict, WeightsError, read_safetensors};
pub use quantized::{Int8Rows, QuantizeError, QuantizedRecurrent, quantize_int8_rows};
pub use recurrent::{Recurrent, RecurrentConfig};
pub use state::RecurrentState;
pub use weights::{FusedWeights, InputProjection, RecurrentInit};
