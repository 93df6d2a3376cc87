//! Fused gate weights in PyTorch's layout, shared by every cell.

use burn::module::{Initializer, Module, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// How the recurrent matrix `weight_hh` is initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecurrentInit {
    /// PyTorch's default: U(−1/√H, 1/√H), like every other weight and bias.
    #[default]
    Uniform,
    /// Each gate's H×H block orthogonal (Saxe et al. 2013); keeps gradient norms
    /// steady over many steps in plain RNNs.
    Orthogonal,
}

/// The fused weights of one layer and direction, named and shaped as PyTorch's
/// `nn.RNN` / `nn.LSTM` / `nn.GRU` name them (without the `_l{k}` suffix):
///
/// | field | shape | PyTorch |
/// |---|---|---|
/// | `weight_ih` | `[G·H, D]` | `weight_ih_l{k}` |
/// | `weight_hh` | `[G·H, H]` | `weight_hh_l{k}` |
/// | `bias_ih` | `[G·H]` | `bias_ih_l{k}` |
/// | `bias_hh` | `[G·H]` | `bias_hh_l{k}` |
///
/// `G` is the number of gate blocks (1 RNN, 4 LSTM in order i,f,g,o, 3 GRU in order r,z,n).
#[derive(Module, Debug)]
pub struct FusedWeights<B: Backend> {
    /// Input-to-gates weights `[G·H, D]`.
    pub weight_ih: Param<Tensor<B, 2>>,
    /// Hidden-to-gates weights `[G·H, H]`.
    pub weight_hh: Param<Tensor<B, 2>>,
    /// Input-side bias `[G·H]`, absent when the layer was built with `bias = false`.
    pub bias_ih: Option<Param<Tensor<B, 1>>>,
    /// Hidden-side bias `[G·H]`.
    pub bias_hh: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> FusedWeights<B> {
    /// Initialises like PyTorch: every weight and bias from U(−1/√H, 1/√H).
    pub fn init(
        gates: usize,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        recurrent_init: RecurrentInit,
        device: &B::Device,
    ) -> Self {
        let bound = 1.0 / (hidden_size as f64).sqrt();
        let uniform = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let rows = gates * hidden_size;
        let weight_hh = match recurrent_init {
            RecurrentInit::Uniform => uniform.init([rows, hidden_size], device),
            RecurrentInit::Orthogonal => {
                let blocks = (0..gates)
                    .map(|_| {
                        Initializer::Orthogonal { gain: 1.0 }
                            .init::<B, 2, _>([hidden_size, hidden_size], device)
                            .val()
                    })
                    .collect();
                Param::from_tensor(Tensor::cat(blocks, 0))
            }
        };
        Self {
            weight_ih: uniform.init([rows, input_size], device),
            weight_hh,
            bias_ih: bias.then(|| uniform.init([rows], device)),
            bias_hh: bias.then(|| uniform.init([rows], device)),
        }
    }

    /// Hidden size `H`.
    pub fn hidden_size(&self) -> usize {
        self.weight_hh.dims()[1]
    }

    /// Input size `D`.
    pub fn input_size(&self) -> usize {
        self.weight_ih.dims()[1]
    }

    /// The input projection `x · W_ihᵀ + b_ih`, prepared once per sequence and applied
    /// to each step. `extra_bias`, when given, is added too (the part of `b_hh` that
    /// commutes with the gates).
    pub fn input_projection(&self, extra_bias: Option<Tensor<B, 1>>) -> InputProjection<B> {
        let bias = match (self.bias_ih.as_ref().map(|b| b.val()), extra_bias) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        InputProjection {
            weight_t: self.weight_ih.val().transpose(),
            bias: bias.map(|b| b.unsqueeze_dim(0)),
        }
    }
}

/// `x · W_ihᵀ + bias` for one step at a time; see [`FusedWeights::input_projection`].
///
/// Each step is its own matmul rather than a slice of one projection of the whole
/// sequence: burn-autodiff 0.21 differentiates a slice by writing the gradient into a
/// zero tensor of the full source shape, which made backward O(T²) in the sequence length.
#[derive(Clone, Debug)]
pub struct InputProjection<B: Backend> {
    weight_t: Tensor<B, 2>,
    bias: Option<Tensor<B, 2>>,
}

impl<B: Backend> InputProjection<B> {
    /// `W_ihᵀ` `[D, G·H]`.
    pub(crate) fn weight_t(&self) -> &Tensor<B, 2> {
        &self.weight_t
    }

    /// The bias `[1, G·H]` that [`InputProjection::apply`] adds.
    pub(crate) fn bias(&self) -> Option<&Tensor<B, 2>> {
        self.bias.as_ref()
    }

    /// `[batch, D]` → `[batch, G·H]`.
    pub fn apply(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let projected = x.matmul(self.weight_t.clone());
        match &self.bias {
            Some(bias) => projected + bias.clone(),
            None => projected,
        }
    }
}
