//! Inference-only recurrent stacks with their weights stored at a lower [`Precision`]:
//! [`QuantizedRecurrent`], built from a trained [`Recurrent`].

use std::any::TypeId;
use std::sync::Arc;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn_ndarray::NdArray;

use crate::error::RecurrentError;
use crate::fused::{PackedDirection, StateRows, ndarray_tensor, ndarray_values, run_packed_layer};
use crate::precision::Precision;
use crate::recurrent::{Recurrent, StackShape};
use crate::state::RecurrentState;

/// Why a module could not be quantised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantizeError {
    /// Quantised inference runs on burn-ndarray's `NdArray` (f32) only.
    #[error(
        "quantised inference runs on burn-ndarray (NdArray, f32); this module is on {backend}: load it on NdArray to quantise it"
    )]
    Backend {
        /// The module's backend type.
        backend: &'static str,
    },
    /// A weight is NaN or infinite.
    #[error(
        "parameter {name} holds {value} at flat index {index}; only finite weights can be quantised"
    )]
    NonFinite {
        /// PyTorch's name of the parameter (`weight_hh_l0_reverse`, …).
        name: String,
        /// The first offending element, in row-major order.
        index: usize,
        /// Its value.
        value: f32,
    },
}

/// A recurrent stack for inference only, its weights stored at a [`Precision`] and packed
/// once for the fused CPU kernels: PyTorch's `torch.ao.nn.quantized.dynamic.LSTM` (and
/// `GRU`), for every cell of [`Recurrent`], with the same forward.
///
/// At [`Precision::Int8`] the weights are quantised symmetrically per output unit, and
/// each step's input and state per row when the step runs; the products are summed exactly
/// in `i32`, so every instruction set gives the same bits. At [`Precision::Bf16`] the
/// weights are rounded to bfloat16 and multiplied in f32, or, where the CPU has AVX-512 BF16
/// when the stack is built ([`isa::Bf16Isa`]), multiplied by `vdpbf16ps` with each step's
/// input and state rounded to bf16 too. At [`Precision::F32`] the result
/// is bit for bit the module's own forward on `NdArray`. Dropout is not applied (inference).
///
/// ```
/// use burn::tensor::{Distribution, Tensor};
/// use burn_ndarray::NdArray;
/// use models::{CellKind, Precision, RecurrentConfig};
///
/// let device = Default::default();
/// let lstm = RecurrentConfig::new(CellKind::lstm(), 13, 64).init::<NdArray>(&device);
/// let int8 = lstm.quantize(Precision::Int8).unwrap();
/// let f32_bytes = lstm.quantize(Precision::F32).unwrap().weight_bytes();
/// assert!(int8.weight_bytes() * 3 < f32_bytes);
///
/// let x = Tensor::<NdArray, 3>::random([2, 50, 13], Distribution::Default, &device);
/// let (y, _) = lstm.forward(x.clone(), None, None);
/// let (y8, _) = int8.forward(x, None, None);
/// let largest_difference = (y - y8).abs().max().into_scalar();
/// assert!(largest_difference < 0.05, "{largest_difference}");
/// ```
#[derive(Debug, Clone)]
pub struct QuantizedRecurrent {
    precision: Precision,
    /// Layer-major, forward then reverse: as [`Recurrent::cells`].
    directions: Arc<Vec<PackedDirection>>,
    bidirectional: bool,
    hidden_size: usize,
    input_size: usize,
    has_cell: bool,
}

impl<B: Backend> Recurrent<B> {
    /// This stack for inference at `precision` (see [`QuantizedRecurrent`]).
    ///
    /// # Errors
    /// [`QuantizeError::Backend`] unless the module is on `NdArray` (an autodiff module is
    /// for training: take its `valid()` inner module); [`QuantizeError::NonFinite`] for a
    /// NaN or infinite weight, named.
    pub fn quantize(&self, precision: Precision) -> Result<QuantizedRecurrent, QuantizeError> {
        if TypeId::of::<B>() != TypeId::of::<NdArray>() {
            return Err(QuantizeError::Backend {
                backend: std::any::type_name::<B>(),
            });
        }
        for (name, data) in self.state_dict() {
            let values = data
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("converted to f32 above");
            check_finite(&name, &values)?;
        }
        let directions = self
            .cells
            .iter()
            .map(|cell| PackedDirection::new(cell, precision))
            .collect();
        Ok(QuantizedRecurrent {
            precision,
            directions: Arc::new(directions),
            bidirectional: self.bidirectional,
            hidden_size: self.hidden_size,
            input_size: self.input_size,
            has_cell: self.cells[0].has_cell_state(),
        })
    }
}

/// A weight quantised to int8 per row, as [`Precision::Int8`] stores it:
/// `weight[r, c] ≈ scales[r] · values[r·cols + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Rows {
    /// The quantised values in `[−127, 127]`, row-major.
    pub values: Vec<i8>,
    /// One scale per row, `max_c |weight[r, c]| / 127` (0 for a row of zeros).
    pub scales: Vec<f32>,
}

/// `weight` (`[rows, cols]` row-major: PyTorch's layout, one row per output unit) quantised
/// exactly as a [`QuantizedRecurrent`] at [`Precision::Int8`] quantises it, for a runtime
/// that takes int8 weights and scales (the ONNX export's int8 layers).
///
/// ```
/// let rows = models::quantize_int8_rows("weight_hh_l0", &[0.5, -1.0, 0.0, 0.25], 2).unwrap();
/// assert_eq!(rows.values, [64, -127, 0, 127]);
/// assert_eq!(rows.scales, [1.0 / 127.0, 0.25 / 127.0]);
/// assert!(models::quantize_int8_rows("w", &[f32::NAN], 1).is_err());
/// ```
///
/// # Errors
/// [`QuantizeError::NonFinite`] for a NaN or infinite value, with `name`.
pub fn quantize_int8_rows(
    name: &str,
    weight: &[f32],
    cols: usize,
) -> Result<Int8Rows, QuantizeError> {
    check_finite(name, weight)?;
    let (values, scales) = crate::fused::quantise_rows(weight, cols);
    Ok(Int8Rows { values, scales })
}

fn check_finite(name: &str, values: &[f32]) -> Result<(), QuantizeError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(QuantizeError::NonFinite {
            name: name.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

impl QuantizedRecurrent {
    /// The precision its weights are stored at.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Bytes of its weight matrices as stored (int8 values with their per-unit f32 scales,
    /// bf16 or f32 values; column padding included, biases not).
    pub fn weight_bytes(&self) -> usize {
        self.directions
            .iter()
            .map(PackedDirection::weight_bytes)
            .sum()
    }

    fn num_directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Layers in the stack.
    pub fn num_layers(&self) -> usize {
        self.directions.len() / self.num_directions()
    }

    /// Features per output step: `num_directions · hidden_size`.
    pub fn output_size(&self) -> usize {
        self.num_directions() * self.hidden_size
    }

    /// As [`Recurrent::forward`]: `input` `[batch, time, input_size]`, an optional initial
    /// state `[num_layers·num_directions, batch, hidden]`, optional lengths; returns the
    /// last layer's outputs `[batch, time, num_directions·hidden]` and the final state.
    ///
    /// # Panics
    /// Where [`QuantizedRecurrent::try_forward`] returns an error.
    pub fn forward(
        &self,
        input: Tensor<NdArray, 3>,
        state: Option<RecurrentState<NdArray, 3>>,
        lengths: Option<&[usize]>,
    ) -> (Tensor<NdArray, 3>, RecurrentState<NdArray, 3>) {
        self.try_forward(input, state, lengths)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`QuantizedRecurrent::forward`], with the checks of [`Recurrent::try_forward`].
    ///
    /// # Errors
    /// As [`Recurrent::try_forward`].
    pub fn try_forward(
        &self,
        input: Tensor<NdArray, 3>,
        state: Option<RecurrentState<NdArray, 3>>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor<NdArray, 3>, RecurrentState<NdArray, 3>), RecurrentError> {
        let [batch, time, features] = input.dims();
        let stack = StackShape {
            input_size: self.input_size,
            states: self.directions.len(),
            hidden_size: self.hidden_size,
            has_cell: self.has_cell,
        };
        stack.check([batch, time, features], state.as_ref(), lengths)?;
        let initial = self.initial_rows(state, batch);
        let mut sequence = ndarray_values(input);
        let mut finals = Vec::with_capacity(self.directions.len());
        let per_layer = self.num_directions();
        for (layer, initial) in self
            .directions
            .chunks(per_layer)
            .zip(initial.chunks(per_layer))
        {
            let (output, states) =
                run_packed_layer(layer, &sequence, (batch, time), initial, lengths);
            sequence = output;
            finals.extend(states);
        }
        let stack =
            |rows: Vec<f32>| ndarray_tensor(rows, [self.directions.len(), batch, self.hidden_size]);
        let hidden = finals
            .iter()
            .flat_map(|s| s.hidden.iter().copied())
            .collect();
        let cell = self.has_cell.then(|| {
            finals
                .iter()
                .flat_map(|s| s.cell.iter().flatten().copied())
                .collect()
        });
        let final_state = RecurrentState {
            hidden: stack(hidden),
            cell: cell.map(stack),
        };
        let output = ndarray_tensor(sequence, [batch, time, self.output_size()]);
        Ok((output, final_state))
    }

    /// Each layer-direction's initial rows: the given (checked) state's, or zeros.
    fn initial_rows(
        &self,
        state: Option<RecurrentState<NdArray, 3>>,
        batch: usize,
    ) -> Vec<StateRows> {
        let rows = batch * self.hidden_size;
        let (hidden, cell) = match state {
            Some(state) => (ndarray_values(state.hidden), state.cell.map(ndarray_values)),
            None => {
                let zeros = vec![0.0; self.directions.len() * rows];
                (zeros.clone(), self.has_cell.then_some(zeros))
            }
        };
        let slice =
            |values: &[f32], index: usize| values[index * rows..(index + 1) * rows].to_vec();
        (0..self.directions.len())
            .map(|index| StateRows {
                hidden: slice(&hidden, index),
                cell: cell.as_ref().map(|c| slice(c, index)),
            })
            .collect()
    }
}
