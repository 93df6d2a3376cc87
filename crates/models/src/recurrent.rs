//! The one recurrent driver: layers, directions, initial and final states, variable
//! lengths and dropout, for every cell.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::cell::{Cell, CellKind};
use crate::error::RecurrentError;
use crate::fused::{self, Kernels, Recurrence};
use crate::state::RecurrentState;
use crate::weights::RecurrentInit;

/// Configuration of a recurrent stack, with PyTorch's argument names.
///
/// ```
/// use models::{CellKind, RecurrentConfig};
/// use burn_ndarray::NdArray;
/// use burn::tensor::Tensor;
///
/// let device = Default::default();
/// let lstm = RecurrentConfig::new(CellKind::lstm(), 40, 128)
///     .with_num_layers(2)
///     .with_bidirectional(true)
///     .init::<NdArray>(&device);
/// let x = Tensor::<NdArray, 3>::zeros([8, 100, 40], &device); // [batch, time, feature]
/// let (output, state) = lstm.forward(x, None, None);
/// assert_eq!(output.dims(), [8, 100, 2 * 128]);
/// assert_eq!(state.hidden.dims(), [2 * 2, 8, 128]); // [num_layers·num_directions, batch, hidden]
/// ```
#[derive(Config, Debug)]
pub struct RecurrentConfig {
    /// The cell and its options.
    pub cell: CellKind,
    /// Features per input step `D`.
    pub input_size: usize,
    /// Hidden units per layer and direction `H`.
    pub hidden_size: usize,
    /// Stacked layers; layer k > 0 reads layer k−1's output. PyTorch's default: 1.
    #[config(default = 1)]
    pub num_layers: usize,
    /// Whether the layers have `bias_ih` and `bias_hh`. PyTorch's default: true.
    #[config(default = true)]
    pub bias: bool,
    /// Run a second direction over the reversed sequence and concatenate. Default: false.
    #[config(default = false)]
    pub bidirectional: bool,
    /// Dropout probability on the outputs of every layer but the last, active only while
    /// training (on an autodiff backend). PyTorch's default: 0.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// How `weight_hh` is initialised. Default: PyTorch's uniform draw.
    #[config(default = "RecurrentInit::Uniform")]
    pub recurrent_init: RecurrentInit,
    /// What runs the time loop. Default: the fused CPU kernels where the backend is
    /// burn-ndarray, the generic driver elsewhere.
    #[config(default = "Kernels::Auto")]
    pub kernels: Kernels,
}

impl RecurrentConfig {
    /// Builds the stack with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Recurrent<B> {
        let directions = if self.bidirectional { 2 } else { 1 };
        let cells = (0..self.num_layers)
            .flat_map(|layer| (0..directions).map(move |_| layer))
            .map(|layer| {
                let input = if layer == 0 {
                    self.input_size
                } else {
                    self.hidden_size * directions
                };
                self.cell.init(
                    input,
                    self.hidden_size,
                    self.bias,
                    self.recurrent_init,
                    device,
                )
            })
            .collect();
        Recurrent {
            cells,
            dropout: DropoutConfig::new(self.dropout).init(),
            bidirectional: self.bidirectional,
            hidden_size: self.hidden_size,
            input_size: self.input_size,
            kernels: self.kernels,
        }
    }
}

/// A stack of recurrent layers over `[batch, time, feature]` input.
///
/// Cells are stored in PyTorch's order: layer 0 forward, layer 0 reverse, layer 1 forward, …
#[derive(Module, Debug)]
pub struct Recurrent<B: Backend> {
    /// One cell per layer and direction.
    pub cells: Vec<Cell<B>>,
    /// Dropout between layers.
    pub dropout: Dropout,
    /// Two directions per layer.
    pub bidirectional: bool,
    /// `H`.
    pub hidden_size: usize,
    /// `D` of the first layer.
    pub input_size: usize,
    /// What runs the time loop; may be changed on a built stack.
    #[module(skip)]
    pub kernels: Kernels,
}

impl<B: Backend> Recurrent<B> {
    /// 1 or 2.
    pub fn num_directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Number of stacked layers.
    pub fn num_layers(&self) -> usize {
        self.cells.len() / self.num_directions()
    }

    /// Features per output step: `num_directions · H`.
    pub fn output_size(&self) -> usize {
        self.num_directions() * self.hidden_size
    }

    /// Runs the stack.
    ///
    /// - `input`: `[batch, time, input_size]`.
    /// - `state`: initial `h_0` (and `c_0`) as `[num_layers·num_directions, batch, H]`; zeros when `None`.
    /// - `lengths`: each sequence's valid steps (PyTorch's packed-sequence meaning): outputs past
    ///   a sequence's length are zero, its final state is taken at its own last step, and the
    ///   reverse direction starts at its own end. `None` means every sequence is full length.
    ///
    /// Returns the output `[batch, time, num_directions·H]` and the final state, laid out as the
    /// initial one. Feeding a sequence in chunks, passing each call's final state to the next,
    /// gives the same outputs as feeding it whole (unidirectional stacks).
    ///
    /// # Panics
    /// On inputs that [`Recurrent::try_forward`] rejects, with its message.
    pub fn forward(
        &self,
        input: Tensor<B, 3>,
        state: Option<RecurrentState<B, 3>>,
        lengths: Option<&[usize]>,
    ) -> (Tensor<B, 3>, RecurrentState<B, 3>) {
        self.try_forward(input, state, lengths)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`Recurrent::forward`] with the shapes checked first.
    pub fn try_forward(
        &self,
        input: Tensor<B, 3>,
        state: Option<RecurrentState<B, 3>>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor<B, 3>, RecurrentState<B, 3>), RecurrentError> {
        let [batch, time, features] = input.dims();
        let stack = StackShape {
            input_size: self.input_size,
            states: self.cells.len(),
            hidden_size: self.hidden_size,
            has_cell: self.cells[0].has_cell_state(),
        };
        stack.check([batch, time, features], state.as_ref(), lengths)?;

        let device = input.device();
        let recurrences: Option<Vec<Recurrence>> = self
            .cells
            .iter()
            .map(|cell| fused::recurrence_for(cell, self.kernels))
            .collect();
        if let Some(recurrences) = recurrences {
            // Each layer-direction as one fused kernel call (see [`crate::fused`]); the
            // sequence stays one contiguous `[B, T, F]` tensor between layers.
            let run_layer = |layer: usize, sequence: Tensor<B, 3>, initial| {
                let directions = self.num_directions();
                let first = layer * directions;
                fused::run_layer(
                    &recurrences[first..first + directions],
                    sequence,
                    &self.cells[first..first + directions],
                    initial,
                    lengths,
                )
            };
            let dropout = |sequence| fused::dropout(sequence, self.dropout.prob);
            let at = (batch, &device);
            return Ok(self.stack_layers(input, state.as_ref(), at, run_layer, dropout));
        }

        // The sequence travels between layers as one `[batch, F]` tensor per step and is
        // stacked only at the end: slicing a stacked, tracked tensor per step costs
        // O(T²) in burn-autodiff 0.21's backward (see `InputProjection`).
        let masks = StepMasks::new(lengths, batch, time, &device);
        let steps: Vec<Tensor<B, 2>> = input
            .chunk(time, 1)
            .into_iter()
            .map(|step| step.reshape([batch, features]))
            .collect();
        let run_layer = |layer: usize, steps: Vec<Tensor<B, 2>>, initial: Vec<_>| {
            let first = layer * self.num_directions();
            let (mut directions, finals): (Vec<_>, Vec<_>) = initial
                .into_iter()
                .enumerate()
                .map(|(direction, initial)| {
                    let cell = &self.cells[first + direction];
                    run_direction(cell, &steps, initial, &masks, direction == 1)
                })
                .unzip();
            let outputs: Vec<Tensor<B, 2>> = if directions.len() == 1 {
                directions.pop().expect("one direction")
            } else {
                let backward = directions.pop().expect("two directions");
                let forward = directions.pop().expect("two directions");
                forward
                    .into_iter()
                    .zip(backward)
                    .map(|(f, b)| Tensor::cat(vec![f, b], 1))
                    .collect()
            };
            (outputs, finals)
        };
        let dropout = |steps: Vec<Tensor<B, 2>>| {
            steps
                .into_iter()
                .map(|step| self.dropout.forward(step))
                .collect()
        };
        let at = (batch, &device);
        let (steps, final_state) = self.stack_layers(steps, state.as_ref(), at, run_layer, dropout);
        Ok((Tensor::stack(steps, 1), final_state))
    }

    /// The one loop over layers, whatever runs a layer: each layer reads the previous
    /// one's output (with dropout between layers), starts from its directions' initial
    /// states, and gives its directions' final states, stacked as PyTorch's `h_n`/`c_n`.
    /// `run_layer(layer, sequence, initial)` returns the layer's output and final states,
    /// one per direction.
    fn stack_layers<S>(
        &self,
        input: S,
        state: Option<&RecurrentState<B, 3>>,
        (batch, device): (usize, &B::Device),
        mut run_layer: impl FnMut(usize, S, Vec<RecurrentState<B, 2>>) -> (S, Vec<RecurrentState<B, 2>>),
        dropout: impl Fn(S) -> S,
    ) -> (S, RecurrentState<B, 3>) {
        let has_cell = self.cells[0].has_cell_state();
        let mut sequence = input;
        let mut final_hidden = Vec::with_capacity(self.cells.len());
        let mut final_cell = Vec::with_capacity(self.cells.len());
        for layer in 0..self.num_layers() {
            let first = layer * self.num_directions();
            let initial = (first..first + self.num_directions())
                .map(|index| self.initial_state(state, index, batch, device))
                .collect();
            let (outputs, finals) = run_layer(layer, sequence, initial);
            for last in finals {
                final_hidden.push(last.hidden);
                final_cell.extend(last.cell);
            }
            let is_last = layer + 1 == self.num_layers();
            sequence = if is_last { outputs } else { dropout(outputs) };
        }
        let final_state = RecurrentState {
            hidden: Tensor::stack(final_hidden, 0),
            cell: has_cell.then(|| Tensor::stack(final_cell, 0)),
        };
        (sequence, final_state)
    }

    /// Layer-direction `index`'s initial state: from `state`, or zeros.
    fn initial_state(
        &self,
        state: Option<&RecurrentState<B, 3>>,
        index: usize,
        batch: usize,
        device: &B::Device,
    ) -> RecurrentState<B, 2> {
        match state {
            Some(state) => RecurrentState {
                hidden: pick(&state.hidden, index),
                cell: state.cell.as_ref().map(|c| pick(c, index)),
            },
            None => {
                let zeros = Tensor::zeros([batch, self.hidden_size], device);
                RecurrentState {
                    cell: self.cells[index].has_cell_state().then(|| zeros.clone()),
                    hidden: zeros,
                }
            }
        }
    }
}

/// The shared time loop for one layer-direction. Outputs come back in the input's step
/// order; the reverse direction walks the steps backwards, and the masks keep each
/// sequence at its initial state until its own last step (PyTorch's packed sequences).
fn run_direction<B: Backend>(
    cell: &Cell<B>,
    steps: &[Tensor<B, 2>],
    initial: RecurrentState<B, 2>,
    masks: &StepMasks<B>,
    reverse: bool,
) -> (Vec<Tensor<B, 2>>, RecurrentState<B, 2>) {
    let projection = cell.input_projection();
    let weights = cell.step_weights();
    let mut state = initial;
    let mut outputs: Vec<Option<Tensor<B, 2>>> = vec![None; steps.len()];
    let order: Box<dyn Iterator<Item = usize>> = if reverse {
        Box::new((0..steps.len()).rev())
    } else {
        Box::new(0..steps.len())
    };
    for t in order {
        let next = cell.step(&weights, projection.apply(steps[t].clone()), &state);
        state = match masks.at(t) {
            None => {
                outputs[t] = Some(next.hidden.clone());
                next
            }
            Some(keep) => {
                outputs[t] = Some(next.hidden.clone() * keep.clone());
                next.blend(&state, keep)
            }
        };
    }
    let outputs = outputs
        .into_iter()
        .map(|o| o.expect("every step ran"))
        .collect();
    (outputs, state)
}

/// Per-step `[batch, 1]` masks (1 where the step is inside the sequence); `None` for steps
/// that every sequence reaches, so full batches pay nothing.
struct StepMasks<B: Backend> {
    masks: Vec<Option<Tensor<B, 2>>>,
}

impl<B: Backend> StepMasks<B> {
    fn new(lengths: Option<&[usize]>, batch: usize, time: usize, device: &B::Device) -> Self {
        let masks = match lengths {
            None => Vec::new(),
            Some(lengths) => (0..time)
                .map(|t| {
                    lengths.iter().any(|&len| t >= len).then(|| {
                        let keep: Vec<f32> = lengths
                            .iter()
                            .map(|&len| if t < len { 1.0 } else { 0.0 })
                            .collect();
                        Tensor::from_data(TensorData::new(keep, [batch, 1]), device)
                    })
                })
                .collect(),
        };
        Self { masks }
    }

    fn at(&self, t: usize) -> Option<&Tensor<B, 2>> {
        self.masks.get(t).and_then(Option::as_ref)
    }
}

fn pick<B: Backend>(stack: &Tensor<B, 3>, index: usize) -> Tensor<B, 2> {
    let [_, batch, hidden] = stack.dims();
    stack.clone().narrow(0, index, 1).reshape([batch, hidden])
}

/// What a stack's forward accepts: `[batch, time, input_size]` inputs and initial states
/// `[states, batch, hidden_size]` (with a cell state exactly when `has_cell`).
pub(crate) struct StackShape {
    pub input_size: usize,
    pub states: usize,
    pub hidden_size: usize,
    pub has_cell: bool,
}

impl StackShape {
    /// The forward's checks of its input's shape, its lengths and its initial state.
    pub(crate) fn check<B: Backend>(
        &self,
        [batch, time, features]: [usize; 3],
        state: Option<&RecurrentState<B, 3>>,
        lengths: Option<&[usize]>,
    ) -> Result<(), RecurrentError> {
        if features != self.input_size {
            return Err(RecurrentError::InputSize {
                expected: self.input_size,
                got: features,
            });
        }
        if let Some(lengths) = lengths {
            check_lengths(lengths, batch, time)?;
        }
        let Some(state) = state else {
            return Ok(());
        };
        let shape = [self.states, batch, self.hidden_size];
        check_state_shape("hidden", state.hidden.dims(), shape)?;
        match (&state.cell, self.has_cell) {
            (Some(cell), true) => check_state_shape("cell", cell.dims(), shape),
            (None, true) => Err(RecurrentError::MissingCellState),
            (Some(_), false) => Err(RecurrentError::UnexpectedCellState),
            (None, false) => Ok(()),
        }
    }
}

fn check_lengths(lengths: &[usize], batch: usize, time: usize) -> Result<(), RecurrentError> {
    if lengths.len() != batch {
        return Err(RecurrentError::LengthsCount {
            expected: batch,
            got: lengths.len(),
        });
    }
    match lengths.iter().position(|&len| len == 0 || len > time) {
        Some(index) => Err(RecurrentError::LengthOutOfRange {
            index,
            length: lengths[index],
            time,
        }),
        None => Ok(()),
    }
}

fn check_state_shape(
    which: &'static str,
    got: [usize; 3],
    expected: [usize; 3],
) -> Result<(), RecurrentError> {
    if got == expected {
        Ok(())
    } else {
        Err(RecurrentError::StateShape {
            which,
            expected,
            got,
        })
    }
}
