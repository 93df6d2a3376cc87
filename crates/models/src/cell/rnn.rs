use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::StepWeights;
use crate::state::RecurrentState;
use crate::weights::FusedWeights;

/// The activation of an Elman RNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Nonlinearity {
    /// PyTorch's default (`nonlinearity='tanh'`).
    #[default]
    Tanh,
    /// `nonlinearity='relu'`.
    Relu,
    /// The classic textbook (and 1990s) form.
    Sigmoid,
}

impl Nonlinearity {
    pub(crate) fn apply<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Tanh => x.tanh(),
            Self::Relu => activation::relu(x),
            Self::Sigmoid => super::sigmoid(x),
        }
    }
}

/// Elman RNN cell: `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`.
#[derive(Module, Debug)]
pub struct RnnCell<B: Backend> {
    /// Fused weights, one gate block.
    pub weights: FusedWeights<B>,
    /// The activation `act`.
    pub nonlinearity: Nonlinearity,
}

impl<B: Backend> RnnCell<B> {
    pub(crate) fn step(
        &self,
        weights: &StepWeights<B>,
        projected: Tensor<B, 2>,
        state: &RecurrentState<B, 2>,
    ) -> RecurrentState<B, 2> {
        let pre = projected + state.hidden.clone().matmul(weights.recurrent.clone());
        RecurrentState {
            hidden: self.nonlinearity.apply(pre),
            cell: None,
        }
    }
}
