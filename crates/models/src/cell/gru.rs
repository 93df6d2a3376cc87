use super::sigmoid;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::StepWeights;
use crate::state::RecurrentState;
use crate::weights::{FusedWeights, InputProjection};

/// GRU cell, gates r, z, n:
///
/// ```text
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))     reset_after (PyTorch, cuDNN)
/// n = tanh(W_in x + b_in + W_hn (r⊙h) + b_hn)     reset before (Cho et al. 2014)
/// h' = (1 − z)⊙n + z⊙h
/// ```
#[derive(Module, Debug)]
pub struct GruCell<B: Backend> {
    /// Fused weights, three gate blocks in order r, z, n.
    pub weights: FusedWeights<B>,
    /// Where the reset gate applies; see the type's docs.
    pub reset_after: bool,
}

impl<B: Backend> GruCell<B> {
    pub(crate) fn input_projection(&self) -> InputProjection<B> {
        // Reset-before: all of b_hh commutes with the gates. Reset-after: b_hn must stay
        // inside r⊙(…), so it is added per step instead (see `step_weights`).
        let folded = if self.reset_after {
            None
        } else {
            self.weights.bias_hh.as_ref().map(|b| b.val())
        };
        self.weights.input_projection(folded)
    }

    pub(crate) fn step_weights(&self) -> StepWeights<B> {
        let hidden = self.weights.hidden_size();
        let w_hh_t = self.weights.weight_hh.val().transpose();
        if self.reset_after {
            StepWeights {
                recurrent: w_hh_t,
                reset_recurrent: None,
                recurrent_bias: self
                    .weights
                    .bias_hh
                    .as_ref()
                    .map(|b| b.val().unsqueeze_dim(0)),
                peephole: None,
            }
        } else {
            StepWeights {
                recurrent: w_hh_t.clone().slice([0..hidden, 0..2 * hidden]),
                reset_recurrent: Some(w_hh_t.slice([0..hidden, 2 * hidden..3 * hidden])),
                recurrent_bias: None,
                peephole: None,
            }
        }
    }

    pub(crate) fn step(
        &self,
        weights: &StepWeights<B>,
        projected: Tensor<B, 2>,
        state: &RecurrentState<B, 2>,
    ) -> RecurrentState<B, 2> {
        let h = state.hidden.clone();
        let [x_r, x_z, x_n]: [Tensor<B, 2>; 3] =
            projected.chunk(3, 1).try_into().expect("three gate blocks");
        let mut h_gates = h.clone().matmul(weights.recurrent.clone());
        if let Some(bias) = &weights.recurrent_bias {
            h_gates = h_gates + bias.clone();
        }
        // Reset-after: h_gates holds r, z and n blocks. Reset-before: only r and z.
        let blocks = if weights.reset_recurrent.is_some() {
            2
        } else {
            3
        };
        let mut h_gates = h_gates.chunk(blocks, 1).into_iter();
        let mut next_block = || h_gates.next().expect("gate block");
        let r = sigmoid(x_r + next_block());
        let z = sigmoid(x_z + next_block());
        let n_recurrent = match &weights.reset_recurrent {
            Some(w_hn_t) => (r * h.clone()).matmul(w_hn_t.clone()),
            None => r * next_block(),
        };
        let n = (x_n + n_recurrent).tanh();
        // h' = (1 − z)⊙n + z⊙h, written as n + z⊙(h − n).
        RecurrentState {
            hidden: n.clone() + z * (h - n),
            cell: None,
        }
    }
}
