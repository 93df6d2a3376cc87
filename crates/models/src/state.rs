//! Recurrent states passed between steps, layers and calls.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// The state of a recurrent layer: the hidden state, and for the LSTM the cell state.
///
/// `D = 2` for one layer and direction (`[batch, hidden]`); `D = 3` for a whole stack,
/// laid out as PyTorch's `h_n` / `c_n`: `[num_layers · num_directions, batch, hidden]`.
#[derive(Debug, Clone)]
pub struct RecurrentState<B: Backend, const D: usize> {
    /// Hidden state `h`.
    pub hidden: Tensor<B, D>,
    /// Cell state `c` (LSTM only; `None` for RNN and GRU).
    pub cell: Option<Tensor<B, D>>,
}

impl<B: Backend, const D: usize> RecurrentState<B, D> {
    /// Keeps `self` where `keep` is 1 and `previous` where it is 0; `keep` is `[batch, 1]`
    /// (broadcast over the hidden units). Used to freeze finished sequences.
    pub(crate) fn blend(self, previous: &Self, keep: &Tensor<B, D>) -> Self {
        let mix = |new: Tensor<B, D>, old: Tensor<B, D>| old.clone() + (new - old) * keep.clone();
        Self {
            hidden: mix(self.hidden, previous.hidden.clone()),
            cell: match (self.cell, &previous.cell) {
                (Some(new), Some(old)) => Some(mix(new, old.clone())),
                (new, _) => new,
            },
        }
    }
}
