//! Fused time loops for the CPU backend.
//!
//! The generic driver builds about twenty small tensor operations per step, and on
//! `Autodiff<NdArray>` their bookkeeping, not the arithmetic, dominates forward+backward.
//! When the backend is burn-ndarray (`NdArray` or `Autodiff<NdArray>`, f32), every cell
//! runs a whole layer-direction as one operation on the tensors' own buffers: per step, the
//! products of the input and of the state with weights packed once per call
//! ([`packed`]), then the gate arithmetic with vectorised `exp`/`tanh` ([`math`]), compiled
//! for the best instruction set the CPU has ([`isa`]), the batch split between threads. On
//! autodiff it is one graph node whose backward is the hand-written backpropagation
//! through time of [`cpu::backward`]. Other backends take the generic driver, which is
//! also the reference the kernels are tested against.
//!
//! The backend is recognised by `TypeId`, so modules stay generic over any `B: Backend`.

#[macro_use]
mod macros;
mod bf16;
mod bf16_pairs;
mod cpu;
mod dropout;
mod inference;
mod int8;
mod math;
mod packed;
mod packed_cache;
mod pool;

use packed_cache::packed_weights;

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::Cell as ThreadFlag;
use std::sync::{Arc, OnceLock};

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorMetadata, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_ndarray::{NdArray, NdArrayTensor};

pub(crate) use cpu::Recurrence;
pub(crate) use dropout::dropout;
pub(crate) use inference::{PackedDirection, StateRows, ndarray_values, run_packed_layer};
pub(crate) use int8::quantise_rows;
pub use isa::{CpuIsa, cpu_isa, set_cpu_isa_limit};
pub use pool::empty_cache;

use crate::cell::Cell;
use crate::state::RecurrentState;

type CpuAutodiff = Autodiff<NdArray>;

thread_local! {
    static THREADS: ThreadFlag<Option<usize>> = const { ThreadFlag::new(None) };
}

/// Sets how many threads the fused kernels split a batch between, for calls made from the
/// calling thread (as `torch.set_num_threads`; at most one per sequence in the batch).
/// Without it they use every core when a step holds enough work to pay for a thread.
///
/// ```
/// models::set_num_threads(1);
/// assert_eq!(models::num_threads(), Some(1));
/// ```
pub fn set_num_threads(threads: usize) {
    THREADS.with(|cell| cell.set(Some(threads.max(1))));
}

/// The thread count set by [`set_num_threads`] on the calling thread, if any.
pub fn num_threads() -> Option<usize> {
    THREADS.with(ThreadFlag::get)
}

/// Threads for one layer: the caller's setting, or every core once a step's recurrent
/// product has at least [`MIN_STEP_FLOP`] per thread.
pub(crate) fn threads_for(dims: cpu::Dims, gates: usize) -> usize {
    /// Below this a thread costs more to start than it saves (it runs every step).
    const MIN_STEP_FLOP: usize = 1 << 18;
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from));
    let step_flop = 2 * dims.batch * dims.hidden * gates * dims.hidden;
    let threads = num_threads().unwrap_or_else(|| cores.min(step_flop / MIN_STEP_FLOP).max(1));
    threads.min(dims.batch.max(1))
}

/// Which code runs a layer's time loop ([`crate::RecurrentConfig::kernels`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernels {
    /// The fused CPU kernels on burn-ndarray (and `Autodiff<NdArray>`), with their own
    /// backward; the generic driver on every other backend. The default.
    #[default]
    Auto,
    /// The generic driver (burn tensor operations, one cell step at a time) on every
    /// backend: the reference the fused kernels are tested against.
    Generic,
}

/// The kernel's equations for `cell`, when the kernels cover it and backend `B`.
pub(crate) fn recurrence_for<B: Backend>(cell: &Cell<B>, kernels: Kernels) -> Option<Recurrence> {
    let backend = TypeId::of::<B>();
    let cpu = backend == TypeId::of::<NdArray>() || backend == TypeId::of::<CpuAutodiff>();
    if !cpu || kernels == Kernels::Generic {
        return None;
    }
    Some(recurrence_of(cell))
}

/// The kernel's equations for `cell`.
fn recurrence_of<B: Backend>(cell: &Cell<B>) -> Recurrence {
    match cell {
        Cell::Rnn(c) => Recurrence::Rnn(c.nonlinearity),
        Cell::Lstm(c) => Recurrence::Lstm {
            peephole: c.peephole.is_some(),
            coupled: c.coupled_input_forget,
        },
        Cell::Gru(c) if c.reset_after => Recurrence::GruResetAfter,
        Cell::Gru(_) => Recurrence::GruResetBefore,
    }
}

/// One layer, in one or both directions, through the kernel.
///
/// `x` is the layer's input `[B, T, D]`; `cells` and `initial` hold one entry per direction
/// (forward, then reverse). Returns the per-step outputs `[B, T, directions·H]` and each
/// direction's final states.
pub(crate) fn run_layer<B: Backend>(
    recurrences: &[Recurrence],
    x: Tensor<B, 3>,
    cells: &[Cell<B>],
    initial: Vec<RecurrentState<B, 2>>,
    lengths: Option<&[usize]>,
) -> (Tensor<B, 3>, Vec<RecurrentState<B, 2>>) {
    pool::keep_freed_blocks();
    let [batch, time, input] = x.dims();
    let hidden = initial[0].hidden.dims()[1];
    let device = x.device();
    let placeholder = || Tensor::<B, 2>::zeros([1, 1], &device);
    let mut operands = Vec::with_capacity(operand_count(cells.len()) - 1);
    let mut directions = Vec::with_capacity(cells.len());
    for (index, (cell, initial)) in cells.iter().zip(initial).enumerate() {
        // The input projection with every bias that folds into it, and the per-step
        // constants; the kernels take all of `W_hhᵀ` (the reset-before GRU splits it).
        let projection = cell.input_projection();
        let weights = cell.step_weights();
        directions.push(Direction {
            recurrence: recurrences[index],
            has_input_bias: projection.bias().is_some(),
            has_bias: weights.recurrent_bias.is_some(),
            reverse: index == 1,
        });
        let direction = Operands {
            w_ih_t: projection.weight_t().clone(),
            input_bias: projection.bias().cloned().unwrap_or_else(placeholder),
            w_t: cell.weights().weight_hh.val().transpose(),
            bias: weights.recurrent_bias.clone().unwrap_or_else(placeholder),
            peephole: match &weights.peephole {
                Some(p) => Tensor::cat(p.to_vec(), 1),
                None => placeholder(),
            },
            h0: initial.hidden,
            c0: initial.cell.unwrap_or_else(placeholder),
        };
        operands.extend(direction.into_array());
    }
    let dims = cpu::Dims {
        time,
        batch,
        hidden,
        input,
    };
    let layout = Layout {
        dims,
        directions,
        lengths: lengths.map(<[usize]>::to_vec),
        isa: cpu_isa(),
        threads: threads_for(dims, recurrences[0].gates()),
        finals_apart: TypeId::of::<B>() != TypeId::of::<CpuAutodiff>(),
    };
    if TypeId::of::<B>() == TypeId::of::<CpuAutodiff>() {
        let x = cast::<_, Tensor<CpuAutodiff, 3>>(x)
            .into_primitive()
            .tensor();
        let operands = std::iter::once(x)
            .chain(operands.into_iter().map(|t| {
                cast::<_, Tensor<CpuAutodiff, 2>>(t)
                    .into_primitive()
                    .tensor()
            }))
            .collect();
        let output = match cells.len() {
            1 => run_autodiff::<{ operand_count(1) }>(layout, operands),
            _ => run_autodiff::<{ operand_count(2) }>(layout, operands),
        };
        split_steps(cast(output), recurrences[0].has_cell(), time, hidden)
    } else {
        let x = cast::<_, Tensor<NdArray, 3>>(x).into_primitive().tensor();
        let primitives: Vec<NdArrayTensor> = std::iter::once(x)
            .chain(
                operands
                    .into_iter()
                    .map(|t| cast::<_, Tensor<NdArray, 2>>(t).into_primitive().tensor()),
            )
            .collect();
        let (mut output, _) = layout.forward(&primitives, false);
        // The final states are copied out (a few rows); the per-step outputs keep the buffer.
        let width = cells.len() * hidden;
        let finals = output.split_off(batch * time * width);
        let state = |which: usize, direction: usize| {
            let values = finals[which * batch * width..(which + 1) * batch * width]
                .chunks_exact(width)
                .flat_map(|row| &row[direction * hidden..(direction + 1) * hidden])
                .copied()
                .collect();
            cast(ndarray_tensor(values, [batch, hidden]))
        };
        let finals = (0..cells.len())
            .map(|d| RecurrentState {
                hidden: state(0, d),
                cell: recurrences[0].has_cell().then(|| state(1, d)),
            })
            .collect();
        (cast(ndarray_tensor(output, [batch, time, width])), finals)
    }
}

/// A tensor on `NdArray` that takes `values` (row-major) as its buffer.
pub(crate) fn ndarray_tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
) -> Tensor<NdArray, D> {
    Tensor::from_primitive(TensorPrimitive::Float(vec_to_primitive(values, &shape)))
}

/// The per-step outputs `[B, T, directions·H]` and each direction's final states from a
/// layer's output `[B, T + 1 (+1), directions·H]` (see [`cpu::Slot::finals_apart`]).
fn split_steps<B: Backend>(
    output: Tensor<B, 3>,
    has_cell: bool,
    time: usize,
    hidden: usize,
) -> (Tensor<B, 3>, Vec<RecurrentState<B, 2>>) {
    let [batch, _, width] = output.dims();
    let step = |step: usize, direction: usize| {
        output
            .clone()
            .narrow(1, time + step, 1)
            .narrow(2, direction * hidden, hidden)
            .reshape([batch, hidden])
    };
    let finals = (0..width / hidden)
        .map(|d| RecurrentState {
            hidden: step(0, d),
            cell: has_cell.then(|| step(1, d)),
        })
        .collect();
    (output.narrow(1, 0, time), finals)
}

/// The tensors of one direction, in the order they follow the input `x` `[B, T, D]` among
/// the fused node's operands (the autodiff parents); the ones a layer lacks are `[1, 1]`
/// placeholders.
#[derive(Debug, Clone, Copy)]
struct Operands<T> {
    /// `W_ihᵀ`, `[D, G·H]`.
    w_ih_t: T,
    /// The bias folded into the input projection, `[1, G·H]`.
    input_bias: T,
    /// `W_hhᵀ`, `[H, G·H]`.
    w_t: T,
    /// The bias added to `h·W_hhᵀ` every step (the reset-after GRU's `b_hh`), `[1, G·H]`.
    bias: T,
    /// The LSTM's peepholes, i, f and o side by side, `[1, 3·H]`.
    peephole: T,
    /// The initial hidden state, `[B, H]`.
    h0: T,
    /// The initial cell state (LSTM), `[B, H]`.
    c0: T,
}

/// How many operands [`Operands`] holds.
const PER_DIRECTION: usize = 7;

/// The input `x`, then each direction's operands.
const fn operand_count(directions: usize) -> usize {
    1 + PER_DIRECTION * directions
}

impl<T> Operands<T> {
    fn into_array(self) -> [T; PER_DIRECTION] {
        [
            self.w_ih_t,
            self.input_bias,
            self.w_t,
            self.bias,
            self.peephole,
            self.h0,
            self.c0,
        ]
    }

    fn from_array([w_ih_t, input_bias, w_t, bias, peephole, h0, c0]: [T; PER_DIRECTION]) -> Self {
        Self {
            w_ih_t,
            input_bias,
            w_t,
            bias,
            peephole,
            h0,
            c0,
        }
    }

    /// Each direction's operands from the operands after `x`.
    fn per_direction(operands: &[T]) -> impl Iterator<Item = Operands<&T>> {
        operands
            .chunks_exact(PER_DIRECTION)
            .map(|chunk| Operands::from_array(std::array::from_fn(|i| &chunk[i])))
    }
}

/// What a direction is, apart from its tensors.
#[derive(Debug, Clone)]
struct Direction {
    recurrence: Recurrence,
    has_input_bias: bool,
    has_bias: bool,
    reverse: bool,
}

/// Everything about the problem that is not a tensor.
#[derive(Debug, Clone)]
struct Layout {
    dims: cpu::Dims,
    directions: Vec<Direction>,
    lengths: Option<Vec<usize>>,
    isa: CpuIsa,
    threads: usize,
    /// See [`cpu::Slot::finals_apart`]: without autodiff the output is split, not sliced.
    finals_apart: bool,
}

impl Layout {
    /// The kernel's view of each direction, from the views of the operands.
    fn inputs<'a>(&'a self, views: &'a [View<'a>]) -> Vec<cpu::Inputs<'a>> {
        let x = &views[0].values;
        self.directions
            .iter()
            .zip(Operands::per_direction(&views[1..]))
            .enumerate()
            .map(|(index, (direction, views))| {
                let Operands {
                    w_ih_t,
                    input_bias,
                    w_t,
                    bias,
                    peephole,
                    h0,
                    c0,
                } = views;
                let recurrence = direction.recurrence;
                cpu::Inputs {
                    recurrence,
                    dims: self.dims,
                    slot: cpu::Slot {
                        direction: index,
                        directions: self.directions.len(),
                        finals_apart: self.finals_apart,
                    },
                    x,
                    w_ih_t: w_ih_t.matrix(),
                    input_bias: direction.has_input_bias.then_some(&input_bias.values[..]),
                    w_t: w_t.matrix(),
                    bias: direction.has_bias.then_some(&bias.values[..]),
                    peephole: matches!(recurrence, Recurrence::Lstm { peephole: true, .. })
                        .then_some(&peephole.values[..]),
                    h0: &h0.values,
                    c0: recurrence.has_cell().then_some(&c0.values[..]),
                    lengths: self.lengths.as_deref(),
                    reverse: direction.reverse,
                }
            })
            .collect()
    }

    fn forward(&self, operands: &[NdArrayTensor], save: bool) -> (Vec<f32>, Vec<cpu::Saved>) {
        let views: Vec<View> = operands.iter().map(View::of).collect();
        let inputs = self.inputs(&views);
        // Training changes the weights every step; inference reuses them call after call
        // (a stream, one frame per call), where packing them would cost more than the step.
        let packed = (!save).then(|| packed_weights(operands, &views, &inputs));
        cpu::forward(
            &inputs,
            packed.flatten().as_deref(),
            save,
            (self.isa, cpu::QuantisedIsas::detected()),
            self.threads,
        )
    }

    fn output_shape(&self) -> [usize; 3] {
        let cpu::Dims {
            time,
            batch,
            hidden,
            ..
        } = self.dims;
        let steps = self.directions[0].recurrence.output_steps(time);
        [batch, steps, self.directions.len() * hidden]
    }
}

/// A whole layer as one autodiff node with `N` operands.
#[derive(Debug)]
struct FusedBackward<const N: usize>;

#[derive(Debug, Clone)]
struct SavedForward {
    layout: Layout,
    /// The operands backward reads (all but the initial states, which are left empty).
    operands: Vec<NdArrayTensor>,
    saved: Vec<cpu::Saved>,
}

impl<const N: usize> Backward<NdArray, N> for FusedBackward<N> {
    type State = Arc<SavedForward>;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        // Backward overwrites the saved activations with the gates' gradients; the state is
        // this node's alone unless burn kept another handle to it.
        let SavedForward {
            layout,
            operands,
            mut saved,
        } = Arc::try_unwrap(ops.state).unwrap_or_else(|shared| (*shared).clone());
        let (layout, operands) = (&layout, &operands);
        let grad_out = grads.consume::<NdArray>(&ops.node);
        let views: Vec<View> = operands.iter().map(View::of).collect();
        let input_grad = ops.parents[0].is_some();
        let (d_x, directions) = cpu::backward(
            &layout.inputs(&views),
            &mut saved,
            &View::of(&grad_out).values,
            input_grad,
            layout.isa,
            layout.threads,
        );
        let cpu::Dims {
            time,
            batch,
            hidden,
            input,
        } = layout.dims;
        let gh = layout.directions[0].recurrence.gates() * hidden;
        let mut values = vec![(d_x, vec![batch, time, input])];
        for g in directions {
            let grads = Operands {
                w_ih_t: (Some(g.w_ih_t), vec![input, gh]),
                input_bias: (g.input_bias, vec![1, gh]),
                w_t: (Some(g.w_t), vec![hidden, gh]),
                bias: (g.bias, vec![1, gh]),
                peephole: (g.peephole, vec![1, 3 * hidden]),
                h0: (Some(g.h0), vec![batch, hidden]),
                c0: (g.c0, vec![batch, hidden]),
            };
            values.extend(grads.into_array());
        }
        for (parent, (grad, shape)) in ops.parents.into_iter().zip(values) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<NdArray>(node.id, vec_to_primitive(grad, &shape));
            }
        }
    }
}

fn run_autodiff<const N: usize>(
    layout: Layout,
    operands: Vec<FloatTensor<CpuAutodiff>>,
) -> Tensor<CpuAutodiff, 3> {
    let tensors: [_; N] = operands
        .try_into()
        .unwrap_or_else(|_| unreachable!("N operands"));
    let nodes = tensors.each_ref().map(|t| t.node.clone());
    let primitives: Vec<NdArrayTensor> = tensors.into_iter().map(|t| t.primitive).collect();
    let shape = layout.output_shape();
    let output = match FusedBackward::<N>
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (packed, saved) = layout.forward(&primitives, true);
            // Backward reads the input and the weights, not the initial states.
            let mut primitives = primitives.into_iter();
            let mut operands: Vec<NdArrayTensor> = primitives.by_ref().take(1).collect();
            let empty = || vec_to_primitive(Vec::new(), &[0]);
            while let Some(w_ih_t) = primitives.next() {
                let mut next = || primitives.next().expect("whole directions");
                // Fields are evaluated in the order written: the operands' order.
                let direction = Operands {
                    w_ih_t,
                    input_bias: next(),
                    w_t: next(),
                    bias: next(),
                    peephole: next(),
                    h0: next(),
                    c0: next(),
                };
                operands.extend(
                    Operands {
                        h0: empty(),
                        c0: empty(),
                        ..direction
                    }
                    .into_array(),
                );
            }
            let state = SavedForward {
                layout,
                operands,
                saved,
            };
            prep.finish(Arc::new(state), vec_to_primitive(packed, &shape))
        }
        OpsKind::UnTracked(prep) => {
            let (packed, _) = layout.forward(&primitives, false);
            prep.finish(vec_to_primitive(packed, &shape))
        }
    };
    Tensor::from_primitive(TensorPrimitive::Float(output))
}

/// `value` as the type it is known (by `TypeId`) to be.
fn cast<A: 'static, T: 'static>(value: A) -> T {
    *(Box::new(value) as Box<dyn Any>)
        .downcast::<T>()
        .expect("the backend was matched by TypeId")
}

/// An f32 tensor's values, read in place where the buffer is row-major or (for a matrix)
/// column-major, copied to row-major otherwise.
struct View<'a> {
    values: Cow<'a, [f32]>,
    /// Row and column strides when the tensor is a matrix.
    strides: (usize, usize),
}

impl<'a> View<'a> {
    fn of(tensor: &'a NdArrayTensor) -> Self {
        let NdArrayTensor::F32(storage) = tensor else {
            panic!("the fused kernels run on f32, got {:?}", tensor.dtype());
        };
        let view = storage.view();
        let shape = view.shape().to_vec();
        let columns = if shape.len() == 2 { shape[1] } else { 1 };
        if let Some(values) = view.to_slice() {
            return Self {
                values: Cow::Borrowed(values),
                strides: (columns, 1),
            };
        }
        if shape.len() == 2
            && view.t().is_standard_layout()
            && let Some(values) = view.to_slice_memory_order()
        {
            return Self {
                values: Cow::Borrowed(values),
                strides: (1, shape[0]),
            };
        }
        Self {
            values: Cow::Owned(view.as_standard_layout().iter().copied().collect()),
            strides: (columns, 1),
        }
    }

    fn matrix(&self) -> cpu::Matrix<'_> {
        cpu::Matrix {
            values: &self.values,
            strides: self.strides,
        }
    }
}

fn vec_to_primitive(values: Vec<f32>, shape: &[usize]) -> NdArrayTensor {
    ndarray::ArcArray::from_shape_vec(ndarray::IxDyn(shape), values)
        .expect("the kernel's output fills its shape")
        .into()
}
