use super::sigmoid;
use burn::module::{Initializer, Module, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::{StepWeights, plain_step_weights};
use crate::state::RecurrentState;
use crate::weights::FusedWeights;

/// LSTM cell, gates i, f, g, o:
///
/// ```text
/// i, f, o = σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (+ peepholes p_i⊙c_{t-1}, p_f⊙c_{t-1})
/// g       = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
/// c_t     = f⊙c_{t-1} + i⊙g                               (coupled: f = 1 − i)
/// h_t     = o⊙tanh(c_t)                                   (peephole: o also sees p_o⊙c_t)
/// ```
#[derive(Module, Debug)]
pub struct LstmCell<B: Backend> {
    /// Fused weights, four gate blocks in order i, f, g, o.
    pub weights: FusedWeights<B>,
    /// Peephole weights `[3·H]` in order i, f, o; `None` for the plain LSTM.
    pub peephole: Option<Param<Tensor<B, 1>>>,
    /// `f = 1 − i` (the forget block of the weights is then unused, as in ONNX).
    pub coupled_input_forget: bool,
}

impl<B: Backend> LstmCell<B> {
    pub(crate) fn new(
        mut weights: FusedWeights<B>,
        peephole: bool,
        coupled_input_forget: bool,
        unit_forget_bias: bool,
        device: &B::Device,
    ) -> Self {
        let hidden = weights.hidden_size();
        if unit_forget_bias {
            // b_ih + b_hh = 1 on the forget block: b_ih's block is 1, b_hh's is 0.
            let set_forget = |bias: Param<Tensor<B, 1>>, value: f32| {
                bias.map(|b| {
                    let ones = Tensor::<B, 1>::full([hidden], value, &b.device());
                    b.slice_assign(hidden..2 * hidden, ones)
                })
            };
            weights.bias_ih = weights.bias_ih.map(|b| set_forget(b, 1.0));
            weights.bias_hh = weights.bias_hh.map(|b| set_forget(b, 0.0));
        }
        let bound = 1.0 / (hidden as f64).sqrt();
        let peephole = peephole.then(|| {
            Initializer::Uniform {
                min: -bound,
                max: bound,
            }
            .init([3 * hidden], device)
        });
        Self {
            weights,
            peephole,
            coupled_input_forget,
        }
    }

    pub(crate) fn step_weights(&self) -> StepWeights<B> {
        let hidden = self.weights.hidden_size();
        let mut weights = plain_step_weights(&self.weights);
        weights.peephole = self.peephole.as_ref().map(|p| {
            let p = p.val().unsqueeze_dim::<2>(0);
            let block = |k: usize| p.clone().slice([0..1, k * hidden..(k + 1) * hidden]);
            [block(0), block(1), block(2)]
        });
        weights
    }

    pub(crate) fn step(
        &self,
        weights: &StepWeights<B>,
        projected: Tensor<B, 2>,
        state: &RecurrentState<B, 2>,
    ) -> RecurrentState<B, 2> {
        let c_prev = state
            .cell
            .clone()
            .expect("the driver always gives an LSTM a cell state");
        let gates = projected + state.hidden.clone().matmul(weights.recurrent.clone());
        let [i, f, g, o]: [Tensor<B, 2>; 4] =
            gates.chunk(4, 1).try_into().expect("four gate blocks");
        let (i, f, o) = match &weights.peephole {
            Some([p_i, p_f, _]) => (
                i + c_prev.clone() * p_i.clone(),
                f + c_prev.clone() * p_f.clone(),
                o,
            ),
            None => (i, f, o),
        };
        let i = sigmoid(i);
        let f = if self.coupled_input_forget {
            i.clone().neg().add_scalar(1.0)
        } else {
            sigmoid(f)
        };
        let c = f * c_prev + i * g.tanh();
        let o = match &weights.peephole {
            Some([_, _, p_o]) => o + c.clone() * p_o.clone(),
            None => o,
        };
        let h = sigmoid(o) * c.clone().tanh();
        RecurrentState {
            hidden: h,
            cell: Some(c),
        }
    }
}
