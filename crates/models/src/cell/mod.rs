//! The recurrent cells. Each one knows how to project all inputs at once and how to take
//! one step; the time loop lives in [`crate::Recurrent`] and is shared by all of them.

mod gru;
mod lstm;
mod rnn;

pub use gru::GruCell;
use lstm::GateBias;
pub use lstm::LstmCell;
pub use rnn::{Nonlinearity, RnnCell};

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::state::RecurrentState;
use crate::weights::{FusedWeights, InputProjection, RecurrentInit};

/// Which cell a layer uses, with the cell's own options. Serialises as a TOML/JSON table
/// tagged by `kind`, e.g. `{ kind = "lstm", peephole = true }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CellKind {
    /// Elman RNN: `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`.
    Rnn {
        /// The activation `act`; PyTorch's default is tanh.
        #[serde(default)]
        nonlinearity: Nonlinearity,
    },
    /// LSTM with gates i, f, g, o (PyTorch's order).
    Lstm {
        /// Gers & Schmidhuber peepholes: i and f also see `c_{t-1}`, o sees `c_t`.
        #[serde(default)]
        peephole: bool,
        /// Couple the input and forget gates: `f = 1 − i`, so
        /// `c_t = (1 − i)⊙c_{t-1} + i⊙g` (ONNX's `input_forget`).
        #[serde(default)]
        coupled_input_forget: bool,
        /// Initialise the forget-gate bias to 1 (Jozefowicz et al. 2015; Keras' `unit_forget_bias`)
        /// instead of PyTorch's uniform draw.
        #[serde(default)]
        unit_forget_bias: bool,
        /// Chrono initialisation (Tallec & Ollivier 2018) for dependencies up to this many
        /// steps: forget-gate bias `log u`, `u ~ U(1, T_max − 1)`, and input-gate bias its
        /// negative, so each unit starts out keeping its cell for ~u steps. Takes the place
        /// of `unit_forget_bias`; `None` (default) keeps PyTorch's uniform draw.
        #[serde(default)]
        chrono_init: Option<usize>,
    },
    /// GRU with gates r, z, n (PyTorch's order).
    Gru {
        /// `true`: reset applied after the recurrent matmul, `n = tanh(W_in x + r⊙(W_hn h + b_hn))`
        /// (PyTorch, cuDNN). `false`: before it, `n = tanh(W_in x + W_hn (r⊙h) + b_hn)` (Cho et al. 2014).
        #[serde(default = "default_true")]
        reset_after: bool,
    },
}

fn default_true() -> bool {
    true
}

impl CellKind {
    /// A plain LSTM as PyTorch builds it.
    pub fn lstm() -> Self {
        Self::Lstm {
            peephole: false,
            coupled_input_forget: false,
            unit_forget_bias: false,
            chrono_init: None,
        }
    }

    /// A GRU as PyTorch builds it (`reset_after`).
    pub fn gru() -> Self {
        Self::Gru { reset_after: true }
    }

    /// An Elman RNN with the given activation.
    pub fn rnn(nonlinearity: Nonlinearity) -> Self {
        Self::Rnn { nonlinearity }
    }

    /// Number of fused gate blocks `G` in `weight_ih` / `weight_hh`.
    pub fn gates(&self) -> usize {
        match self {
            Self::Rnn { .. } => 1,
            Self::Lstm { .. } => 4,
            Self::Gru { .. } => 3,
        }
    }

    /// Whether the state carries a cell `c` beside `h`.
    pub fn has_cell_state(&self) -> bool {
        matches!(self, Self::Lstm { .. })
    }

    /// Short lowercase name (`rnn`, `lstm`, `gru`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Rnn { .. } => "rnn",
            Self::Lstm { .. } => "lstm",
            Self::Gru { .. } => "gru",
        }
    }

    pub(crate) fn init<B: Backend>(
        &self,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        recurrent_init: RecurrentInit,
        device: &B::Device,
    ) -> Cell<B> {
        let weights = FusedWeights::init(
            self.gates(),
            input_size,
            hidden_size,
            bias,
            recurrent_init,
            device,
        );
        match *self {
            Self::Rnn { nonlinearity } => Cell::Rnn(RnnCell {
                weights,
                nonlinearity,
            }),
            Self::Lstm {
                peephole,
                coupled_input_forget,
                unit_forget_bias,
                chrono_init,
            } => {
                let gate_bias = match (chrono_init, unit_forget_bias) {
                    (Some(t_max), _) => GateBias::Chrono { t_max },
                    (None, true) => GateBias::UnitForget,
                    (None, false) => GateBias::Uniform,
                };
                Cell::Lstm(LstmCell::new(
                    weights,
                    peephole,
                    coupled_input_forget,
                    gate_bias,
                    device,
                ))
            }
            Self::Gru { reset_after } => Cell::Gru(GruCell {
                weights,
                reset_after,
            }),
        }
    }
}

/// The per-sequence constants a step needs, computed once before the time loop
/// (transposes and splits of the recurrent weights, biases that cannot be folded).
#[derive(Debug, Clone)]
pub struct StepWeights<B: Backend> {
    /// `W_hhᵀ` for the gates multiplied with `h` directly: `[H, G·H]`
    /// (`[H, 2H]` for a reset-before GRU, whose `n` block is in `reset_recurrent`).
    pub recurrent: Tensor<B, 2>,
    /// Reset-before GRU only: `W_hnᵀ` `[H, H]`, multiplied with `r⊙h`.
    pub reset_recurrent: Option<Tensor<B, 2>>,
    /// Hidden-side bias added at every step (`[1, G·H]`), where it could not be folded into
    /// the input projection (the reset-after GRU's `b_hn` sits inside `r⊙(…)`).
    pub recurrent_bias: Option<Tensor<B, 2>>,
    /// LSTM peepholes `[1, H]` each, for i, f, o.
    pub peephole: Option<[Tensor<B, 2>; 3]>,
}

/// One layer-direction of any recurrent cell.
#[derive(Module, Debug)]
pub enum Cell<B: Backend> {
    /// Elman RNN.
    Rnn(RnnCell<B>),
    /// LSTM and its variants.
    Lstm(LstmCell<B>),
    /// GRU in either reset form.
    Gru(GruCell<B>),
}

impl<B: Backend> Cell<B> {
    /// The fused weights in PyTorch's layout.
    pub fn weights(&self) -> &FusedWeights<B> {
        match self {
            Self::Rnn(c) => &c.weights,
            Self::Lstm(c) => &c.weights,
            Self::Gru(c) => &c.weights,
        }
    }

    /// Whether the state carries a cell `c` beside `h`.
    pub fn has_cell_state(&self) -> bool {
        matches!(self, Self::Lstm(_))
    }

    /// The input projection `[batch, D]` → `[batch, G·H]` with every bias that can be
    /// folded in, prepared once per sequence.
    pub fn input_projection(&self) -> InputProjection<B> {
        match self {
            Self::Rnn(c) => c
                .weights
                .input_projection(c.weights.bias_hh.as_ref().map(|b| b.val())),
            Self::Lstm(c) => c
                .weights
                .input_projection(c.weights.bias_hh.as_ref().map(|b| b.val())),
            Self::Gru(c) => c.input_projection(),
        }
    }

    /// Constants for the time loop; see [`StepWeights`].
    pub fn step_weights(&self) -> StepWeights<B> {
        match self {
            Self::Rnn(c) => plain_step_weights(&c.weights),
            Self::Lstm(c) => c.step_weights(),
            Self::Gru(c) => c.step_weights(),
        }
    }

    /// One step: `projected` is this step's [`Cell::input_projection`], `[batch, G·H]`.
    pub fn step(
        &self,
        weights: &StepWeights<B>,
        projected: Tensor<B, 2>,
        state: &RecurrentState<B, 2>,
    ) -> RecurrentState<B, 2> {
        match self {
            Self::Rnn(c) => c.step(weights, projected, state),
            Self::Lstm(c) => c.step(weights, projected, state),
            Self::Gru(c) => c.step(weights, projected, state),
        }
    }
}

/// `W_hhᵀ` with every bias folded into the input projection.
pub(crate) fn plain_step_weights<B: Backend>(weights: &FusedWeights<B>) -> StepWeights<B> {
    StepWeights {
        recurrent: weights.weight_hh.val().transpose(),
        reset_recurrent: None,
        recurrent_bias: None,
        peephole: None,
    }
}

/// The logistic sigmoid as `½·(1 + tanh(x/2))`: exact, free of overflow, and computed in the
/// backend's own float type (burn 0.21's `activation::sigmoid` rounds through f32, which
/// spoils f64 gradient checks), with fewer kernels than `exp`/`log` formulations.
pub(crate) fn sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.mul_scalar(0.5).tanh().mul_scalar(0.5).add_scalar(0.5)
}
