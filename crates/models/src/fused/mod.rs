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

mod cpu;
mod isa;
mod math;
mod packed;

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::Cell as ThreadFlag;
use std::sync::{Arc, OnceLock};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorMetadata, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_ndarray::{NdArray, NdArrayTensor};

pub(crate) use cpu::Recurrence;
pub use isa::{CpuIsa, cpu_isa, set_cpu_isa_limit};

use crate::cell::Cell;
use crate::state::RecurrentState;

type CpuAutodiff = Autodiff<NdArray>;

thread_local! {
    static ENABLED: ThreadFlag<bool> = const { ThreadFlag::new(true) };
    static THREADS: ThreadFlag<Option<usize>> = const { ThreadFlag::new(None) };
}

/// Turns the fused CPU kernels on or off for the calling thread (on by default).
///
/// Off, every backend runs the generic driver; useful to compare the two or to time the
/// generic path.
///
/// ```
/// models::set_fused_kernels(false);
/// assert!(!models::fused_kernels_enabled());
/// models::set_fused_kernels(true);
/// ```
pub fn set_fused_kernels(enabled: bool) {
    ENABLED.with(|flag| flag.set(enabled));
}

/// Whether [`set_fused_kernels`] left the kernels on for the calling thread.
pub fn fused_kernels_enabled() -> bool {
    ENABLED.with(ThreadFlag::get)
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

/// Threads for one layer-direction: the caller's setting, or every core once a step's
/// product has at least [`MIN_STEP_FLOP`] per thread.
fn threads_for(dims: cpu::Dims, gates: usize) -> usize {
    /// Below this a thread costs more to start than it saves (it runs every step).
    const MIN_STEP_FLOP: usize = 1 << 18;
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from));
    let step_flop = 2 * dims.batch * dims.hidden * gates * dims.hidden;
    let threads = num_threads().unwrap_or_else(|| cores.min(step_flop / MIN_STEP_FLOP).max(1));
    threads.min(dims.batch.max(1))
}

/// The kernel's equations for `cell`, when the kernels cover it and backend `B`.
pub(crate) fn recurrence_for<B: Backend>(cell: &Cell<B>) -> Option<Recurrence> {
    let backend = TypeId::of::<B>();
    let cpu = backend == TypeId::of::<NdArray>() || backend == TypeId::of::<CpuAutodiff>();
    if !cpu || !fused_kernels_enabled() {
        return None;
    }
    match cell {
        Cell::Rnn(c) => Some(Recurrence::Rnn(c.nonlinearity)),
        Cell::Lstm(c) => Some(Recurrence::Lstm {
            peephole: c.peephole.is_some(),
            coupled: c.coupled_input_forget,
        }),
        Cell::Gru(c) if c.reset_after => Some(Recurrence::GruResetAfter),
        Cell::Gru(_) => Some(Recurrence::GruResetBefore),
    }
}

/// One layer-direction through the kernel.
///
/// `x` is the layer's input `[B, T, D]`. Returns the packed output, flat: the per-step
/// outputs `[B, T, H]`, the final `h` `[B, H]` and, for an LSTM, the final `c` `[B, H]`.
pub(crate) fn run<B: Backend>(
    recurrence: Recurrence,
    x: Tensor<B, 3>,
    cell: &Cell<B>,
    initial: RecurrentState<B, 2>,
    lengths: Option<&[usize]>,
    reverse: bool,
) -> Tensor<B, 1> {
    let [batch, time, input] = x.dims();
    let hidden = initial.hidden.dims()[1];
    let device = x.device();
    let placeholder = || Tensor::<B, 2>::zeros([1, 1], &device);
    // The input projection with every bias that folds into it, and the per-step constants;
    // the kernels take all of `W_hhᵀ` (the reset-before GRU splits it itself).
    let projection = cell.input_projection();
    let weights = cell.step_weights();
    let operands = Operands {
        x: x.reshape([batch * time, input]),
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
    let dims = cpu::Dims {
        time,
        batch,
        hidden,
        input,
    };
    let layout = Layout {
        recurrence,
        dims,
        has_bias: weights.recurrent_bias.is_some(),
        has_input_bias: projection.bias().is_some(),
        lengths: lengths.map(<[usize]>::to_vec),
        reverse,
        isa: cpu_isa(),
        threads: threads_for(dims, recurrence.gates()),
    };
    if TypeId::of::<B>() == TypeId::of::<CpuAutodiff>() {
        let packed = run_autodiff(layout, operands.cast::<CpuAutodiff>());
        cast(packed)
    } else {
        let operands = operands.cast::<NdArray>().primitives();
        let (packed, _) = layout.forward(&operands, false);
        cast(Tensor::<NdArray, 1>::from_primitive(
            TensorPrimitive::Float(vec_to_primitive(packed, &layout.packed_shape())),
        ))
    }
}

/// How many tensors the kernel reads: the fields of [`Operands`].
const OPERANDS: usize = 8;

/// The kernel's tensor operands, in a fixed order; the ones a layer lacks (bias, peephole,
/// cell state) are `[1, 1]` placeholders.
struct Operands<B: Backend> {
    /// `[B·T, D]`.
    x: Tensor<B, 2>,
    /// `W_ihᵀ` `[D, G·H]`.
    w_ih_t: Tensor<B, 2>,
    /// `[1, G·H]`.
    input_bias: Tensor<B, 2>,
    /// `W_hhᵀ` `[H, G·H]`.
    w_t: Tensor<B, 2>,
    /// `[1, G·H]`.
    bias: Tensor<B, 2>,
    /// `[1, 3·H]`.
    peephole: Tensor<B, 2>,
    h0: Tensor<B, 2>,
    c0: Tensor<B, 2>,
}

impl<B: Backend> Operands<B> {
    fn cast<T: Backend>(self) -> Operands<T> {
        Operands {
            x: cast(self.x),
            w_ih_t: cast(self.w_ih_t),
            input_bias: cast(self.input_bias),
            w_t: cast(self.w_t),
            bias: cast(self.bias),
            peephole: cast(self.peephole),
            h0: cast(self.h0),
            c0: cast(self.c0),
        }
    }

    fn into_array(self) -> [Tensor<B, 2>; OPERANDS] {
        [
            self.x,
            self.w_ih_t,
            self.input_bias,
            self.w_t,
            self.bias,
            self.peephole,
            self.h0,
            self.c0,
        ]
    }
}

impl Operands<NdArray> {
    fn primitives(self) -> [NdArrayTensor; OPERANDS] {
        self.into_array().map(|t| t.into_primitive().tensor())
    }
}

/// Everything about the problem that is not a tensor.
#[derive(Debug, Clone)]
struct Layout {
    recurrence: Recurrence,
    dims: cpu::Dims,
    has_bias: bool,
    has_input_bias: bool,
    lengths: Option<Vec<usize>>,
    reverse: bool,
    isa: CpuIsa,
    threads: usize,
}

impl Layout {
    /// The kernel's view of the operands, in the order of [`Operands`].
    fn inputs<'a>(&'a self, views: &'a [View<'a>; OPERANDS]) -> cpu::Inputs<'a> {
        let [x, w_ih_t, input_bias, w_t, bias, peephole, h0, c0] = views;
        cpu::Inputs {
            recurrence: self.recurrence,
            dims: self.dims,
            x: &x.values,
            w_ih_t: w_ih_t.matrix(),
            input_bias: self.has_input_bias.then_some(&input_bias.values[..]),
            w_t: w_t.matrix(),
            bias: self.has_bias.then_some(&bias.values[..]),
            peephole: matches!(self.recurrence, Recurrence::Lstm { peephole: true, .. })
                .then_some(&peephole.values[..]),
            h0: &h0.values,
            c0: self.recurrence.has_cell().then_some(&c0.values[..]),
            lengths: self.lengths.as_deref(),
            reverse: self.reverse,
        }
    }

    fn forward(
        &self,
        operands: &[NdArrayTensor; OPERANDS],
        save: bool,
    ) -> (Vec<f32>, Option<cpu::Saved>) {
        let views = operands.each_ref().map(View::of);
        cpu::forward(&self.inputs(&views), save, self.isa, self.threads)
    }

    fn packed_shape(&self) -> [usize; 1] {
        let cpu::Dims {
            time,
            batch,
            hidden,
            ..
        } = self.dims;
        [self.recurrence.packed_rows(time) * batch * hidden]
    }
}

/// The whole layer-direction as one autodiff node.
#[derive(Debug)]
struct FusedBackward;

#[derive(Debug)]
struct SavedForward {
    layout: Layout,
    /// The operands backward reads (all but the initial state).
    operands: [NdArrayTensor; OPERANDS],
    saved: cpu::Saved,
}

impl Backward<NdArray, OPERANDS> for FusedBackward {
    type State = Arc<SavedForward>;

    fn backward(
        self,
        ops: Ops<Self::State, OPERANDS>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let SavedForward {
            layout,
            operands,
            saved,
        } = &*ops.state;
        let grad_out = grads.consume::<NdArray>(&ops.node);
        let views = operands.each_ref().map(View::of);
        let g = cpu::backward(
            &layout.inputs(&views),
            saved,
            &View::of(&grad_out).values,
            layout.isa,
            layout.threads,
        );
        let cpu::Dims {
            time,
            batch,
            hidden,
            input,
        } = layout.dims;
        let gh = layout.recurrence.gates() * hidden;
        let shapes = [
            vec![batch * time, input],
            vec![input, gh],
            vec![1, gh],
            vec![hidden, gh],
            vec![1, gh],
            vec![1, 3 * hidden],
            vec![batch, hidden],
            vec![batch, hidden],
        ];
        let values = [
            Some(g.x),
            Some(g.w_ih_t),
            g.input_bias,
            Some(g.w_t),
            g.bias,
            g.peephole,
            Some(g.h0),
            g.c0,
        ];
        for ((parent, grad), shape) in ops.parents.into_iter().zip(values).zip(shapes) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<NdArray>(node.id, vec_to_primitive(grad, &shape));
            }
        }
    }
}

fn run_autodiff(layout: Layout, operands: Operands<CpuAutodiff>) -> Tensor<CpuAutodiff, 1> {
    let tensors = operands.into_array().map(|t| t.into_primitive().tensor());
    let nodes = tensors.each_ref().map(|t| t.node.clone());
    let primitives = tensors.map(|t| t.primitive);
    let shape = layout.packed_shape();
    let output = match FusedBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (packed, saved) = layout.forward(&primitives, true);
            // Backward reads the input and the weights, not the initial state.
            let empty = || vec_to_primitive(Vec::new(), &[0]);
            let [x, w_ih_t, input_bias, w_t, bias, peephole, _, _] = primitives;
            let state = SavedForward {
                layout,
                operands: [x, w_ih_t, input_bias, w_t, bias, peephole, empty(), empty()],
                saved: saved.expect("forward saves when asked"),
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
