//! Inference through the fused kernels with weights packed once, at a [`Precision`]: the
//! layers of a [`crate::QuantizedRecurrent`].

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use burn_ndarray::NdArray;

use super::{View, cpu, cpu_isa, pool, recurrence_of, threads_for};
use crate::cell::Cell;
use crate::precision::Precision;

/// One layer-direction: its weights packed at a precision and its f32 vectors.
#[derive(Debug)]
pub(crate) struct PackedDirection {
    recurrence: cpu::Recurrence,
    input: usize,
    hidden: usize,
    weights: Arc<cpu::PackedWeights>,
    /// Every bias folded into the input projection, `[G·H]`.
    input_bias: Option<Vec<f32>>,
    /// The bias added to `h·W_hhᵀ` every step (the reset-after GRU's `b_hh`).
    bias: Option<Vec<f32>>,
    /// LSTM peepholes, i, f and o side by side.
    peephole: Option<Vec<f32>>,
}

/// A layer-direction's state rows, `[B, H]` each.
#[derive(Debug, Clone)]
pub(crate) struct StateRows {
    pub hidden: Vec<f32>,
    pub cell: Option<Vec<f32>>,
}

fn values<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    values_of(tensor.into_data())
}

fn values_of(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .into_vec()
        .expect("converted to f32 above")
}

impl PackedDirection {
    /// `cell`'s weights packed at `precision`.
    pub(crate) fn new<B: Backend>(cell: &Cell<B>, precision: Precision) -> Self {
        let recurrence = recurrence_of(cell);
        let projection = cell.input_projection();
        let step = cell.step_weights();
        let [input, width] = projection.weight_t().dims();
        let hidden = cell.weights().hidden_size();
        let w_ih_t = values(projection.weight_t().clone());
        // `W_hh` `[G·H, H]` row-major, read as `W_hhᵀ`.
        let w_hh = values(cell.weights().weight_hh.val());
        let shapes = cpu::Inputs {
            recurrence,
            dims: cpu::Dims {
                time: 0,
                batch: 0,
                hidden,
                input,
            },
            slot: cpu::Slot {
                direction: 0,
                directions: 1,
                finals_apart: true,
            },
            x: &[],
            w_ih_t: cpu::Matrix {
                values: &w_ih_t,
                strides: (width, 1),
            },
            input_bias: None,
            w_t: cpu::Matrix {
                values: &w_hh,
                strides: (1, hidden),
            },
            bias: None,
            peephole: None,
            h0: &[],
            c0: None,
            lengths: None,
            reverse: false,
        };
        Self {
            recurrence,
            input,
            hidden,
            weights: Arc::new(shapes.pack_weights(precision)),
            input_bias: projection.bias().map(|b| values(b.clone())),
            bias: step.recurrent_bias.map(values),
            peephole: step.peephole.map(|p| values(Tensor::cat(p.to_vec(), 1))),
        }
    }

    /// Bytes of the packed weights (the f32 biases and peepholes not counted).
    pub(crate) fn weight_bytes(&self) -> usize {
        self.weights.bytes()
    }
}

/// One layer (its directions, forward then reverse) on `x` `[B, T, D]` from `initial`
/// (one per direction): the outputs `[B, T, directions·H]` and each direction's final state.
pub(crate) fn run_packed_layer(
    directions: &[PackedDirection],
    x: &[f32],
    (batch, time): (usize, usize),
    initial: &[StateRows],
    lengths: Option<&[usize]>,
) -> (Vec<f32>, Vec<StateRows>) {
    pool::keep_freed_blocks();
    let first = &directions[0];
    let dims = cpu::Dims {
        time,
        batch,
        hidden: first.hidden,
        input: first.input,
    };
    let unused = cpu::Matrix {
        values: &[],
        strides: (0, 0),
    };
    let inputs: Vec<cpu::Inputs> = directions
        .iter()
        .zip(initial)
        .enumerate()
        .map(|(index, (direction, state))| cpu::Inputs {
            recurrence: direction.recurrence,
            dims,
            slot: cpu::Slot {
                direction: index,
                directions: directions.len(),
                finals_apart: true,
            },
            x,
            w_ih_t: unused,
            input_bias: direction.input_bias.as_deref(),
            w_t: unused,
            bias: direction.bias.as_deref(),
            peephole: direction.peephole.as_deref(),
            h0: &state.hidden,
            c0: state.cell.as_deref(),
            lengths,
            reverse: index == 1,
        })
        .collect();
    let packed: Vec<Arc<cpu::PackedWeights>> =
        directions.iter().map(|d| d.weights.clone()).collect();
    let threads = threads_for(dims, first.recurrence.gates());
    let isas = (cpu_isa(), cpu::QuantisedIsas::detected());
    let (mut output, _) = cpu::forward(&inputs, Some(&packed), false, isas, threads);
    let width = directions.len() * first.hidden;
    let finals = output.split_off(batch * time * width);
    let rows = |which: usize, direction: usize| -> Vec<f32> {
        finals[which * batch * width..(which + 1) * batch * width]
            .chunks_exact(width)
            .flat_map(|row| &row[direction * first.hidden..(direction + 1) * first.hidden])
            .copied()
            .collect()
    };
    let states = (0..directions.len())
        .map(|d| StateRows {
            hidden: rows(0, d),
            cell: first.recurrence.has_cell().then(|| rows(1, d)),
        })
        .collect();
    (output, states)
}

/// The row-major values of a tensor on `NdArray`, copied out of its buffer.
pub(crate) fn ndarray_values<const D: usize>(tensor: Tensor<NdArray, D>) -> Vec<f32> {
    View::of(&tensor.into_primitive().tensor())
        .values
        .into_owned()
}
