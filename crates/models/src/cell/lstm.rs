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

/// How an LSTM's gate biases start (see [`super::CellKind::Lstm`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum GateBias {
    /// PyTorch's U(−1/√H, 1/√H), like every other weight.
    Uniform,
    /// Forget-gate bias 1.
    UnitForget,
    /// `b_f = log u`, `u ~ U(1, t_max − 1)`, `b_i = −b_f`.
    Chrono { t_max: usize },
}

impl<B: Backend> LstmCell<B> {
    pub(crate) fn new(
        mut weights: FusedWeights<B>,
        peephole: bool,
        coupled_input_forget: bool,
        gate_bias: GateBias,
        device: &B::Device,
    ) -> Self {
        let hidden = weights.hidden_size();
        // PyTorch adds two biases; the chosen value goes into b_ih's block and b_hh's block
        // is zeroed, so that b_ih + b_hh is the value.
        let set_block = |bias: Param<Tensor<B, 1>>, block: usize, value: Tensor<B, 1>| {
            bias.map(|b| b.slice_assign(block * hidden..(block + 1) * hidden, value))
        };
        let (input_gate, forget_gate) = (0, 1);
        let zeros = || Tensor::<B, 1>::zeros([hidden], device);
        let forget = match gate_bias {
            GateBias::Uniform => None,
            GateBias::UnitForget => Some((Tensor::ones([hidden], device), None)),
            GateBias::Chrono { t_max } => {
                let high = (t_max.max(3) - 1) as f64;
                let u = Tensor::<B, 1>::random(
                    [hidden],
                    burn::tensor::Distribution::Uniform(1.0, high),
                    device,
                );
                let log_u = u.log();
                Some((log_u.clone(), Some(log_u.neg())))
            }
        };
        if let Some((forget, input)) = forget {
            weights.bias_ih = weights.bias_ih.map(|b| set_block(b, forget_gate, forget));
            weights.bias_hh = weights.bias_hh.map(|b| set_block(b, forget_gate, zeros()));
            if let Some(input) = input {
                weights.bias_ih = weights.bias_ih.map(|b| set_block(b, input_gate, input));
                weights.bias_hh = weights.bias_hh.map(|b| set_block(b, input_gate, zeros()));
            }
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
