//! Errors for inputs the recurrent modules cannot take.

/// Why a recurrent forward pass or a weight import was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecurrentError {
    /// The last input dimension differs from `input_size`.
    #[error("input.size(-1) must be equal to input_size. Expected {expected}, got {got}")]
    InputSize {
        /// The configured `input_size`.
        expected: usize,
        /// The input's feature dimension.
        got: usize,
    },
    /// An initial state of the wrong shape.
    #[error(
        "expected {which} state of shape {expected:?} ([num_layers·num_directions, batch, hidden]), got {got:?}"
    )]
    StateShape {
        /// `hidden` or `cell`.
        which: &'static str,
        /// The shape the stack needs.
        expected: [usize; 3],
        /// The shape given.
        got: [usize; 3],
    },
    /// An LSTM was given an initial hidden state without a cell state.
    #[error("an LSTM needs an initial cell state beside the hidden state")]
    MissingCellState,
    /// An RNN or GRU was given a cell state.
    #[error("only an LSTM takes a cell state; this stack's cells have none")]
    UnexpectedCellState,
    /// `lengths` does not have one entry per sequence.
    #[error("expected one length per sequence ({expected}), got {got}")]
    LengthsCount {
        /// The batch size.
        expected: usize,
        /// The number of lengths given.
        got: usize,
    },
    /// A length of zero or longer than the padded input.
    #[error("lengths[{index}] = {length} is outside 1..={time} (the padded length)")]
    LengthOutOfRange {
        /// Which sequence.
        index: usize,
        /// Its length.
        length: usize,
        /// The padded length.
        time: usize,
    },
}
