//! Fused time loops for the CPU backend.
//!
//! The generic driver builds about twenty small tensor operations per step, and on
//! `Autodiff<NdArray>` their bookkeeping, not the arithmetic, dominates forward+backward.
//! When the backend is burn-ndarray (`NdArray` or `Autodiff<NdArray>`, f32) and the cell is
//! one the kernels know (every RNN and LSTM form, the reset-after GRU), a whole
//! layer-direction runs as one operation: one `sgemm` per step plus a fused elementwise
//! loop, and on autodiff one graph node whose backward is the hand-written
//! backpropagation through time of [`cpu::backward`], with the weight gradients summed over
//! all steps in a single matmul. Every other backend and cell takes the generic driver,
//! which is also the reference the kernels are tested against.
//!
//! The backend is recognised by `TypeId`, so modules stay generic over any `B: Backend`.

mod cpu;

use std::any::{Any, TypeId};
use std::cell::Cell as ThreadFlag;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_ndarray::NdArray;

pub(crate) use cpu::Recurrence;

use crate::cell::{Cell, StepWeights};
use crate::state::RecurrentState;

type CpuAutodiff = Autodiff<NdArray>;

thread_local! {
    static ENABLED: ThreadFlag<bool> = const { ThreadFlag::new(true) };
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
        Cell::Gru(_) => None,
    }
}

/// One layer-direction through the kernel.
///
/// `projected` is the input projection of every step, time-major `[T, B, G·H]`. Returns the
/// packed output `[T + 1 (+1), B, H]`: per-step outputs, final `h`, and final `c` (LSTM).
pub(crate) fn run<B: Backend>(
    recurrence: Recurrence,
    projected: Tensor<B, 3>,
    weights: &StepWeights<B>,
    initial: RecurrentState<B, 2>,
    lengths: Option<&[usize]>,
    reverse: bool,
) -> Tensor<B, 3> {
    let [time, batch, _] = projected.dims();
    let hidden = initial.hidden.dims()[1];
    let device = projected.device();
    let placeholder = || Tensor::<B, 2>::zeros([1, 1], &device);
    let operands = Operands {
        projected,
        recurrent: weights.recurrent.clone(),
        bias: weights.recurrent_bias.clone().unwrap_or_else(placeholder),
        peephole: match &weights.peephole {
            Some(p) => Tensor::cat(p.to_vec(), 1),
            None => placeholder(),
        },
        h0: initial.hidden,
        c0: initial.cell.unwrap_or_else(placeholder),
    };
    let layout = Layout {
        recurrence,
        dims: cpu::Dims {
            time,
            batch,
            hidden,
        },
        has_bias: weights.recurrent_bias.is_some(),
        lengths: lengths.map(<[usize]>::to_vec),
        reverse,
    };
    if TypeId::of::<B>() == TypeId::of::<CpuAutodiff>() {
        let packed = run_autodiff(layout, operands.cast::<CpuAutodiff>());
        cast(packed)
    } else {
        let operands = operands.cast::<NdArray>();
        let inputs = layout.inputs(operands.map(to_vec));
        let (packed, _) = cpu::forward(&inputs, false);
        cast(from_vec::<3>(packed, layout.packed_shape()))
    }
}

/// The kernel's tensor operands, in a fixed order.
struct Operands<B: Backend> {
    projected: Tensor<B, 3>,
    recurrent: Tensor<B, 2>,
    bias: Tensor<B, 2>,
    peephole: Tensor<B, 2>,
    h0: Tensor<B, 2>,
    c0: Tensor<B, 2>,
}

impl<B: Backend> Operands<B> {
    fn cast<T: Backend>(self) -> Operands<T> {
        Operands {
            projected: cast(self.projected),
            recurrent: cast(self.recurrent),
            bias: cast(self.bias),
            peephole: cast(self.peephole),
            h0: cast(self.h0),
            c0: cast(self.c0),
        }
    }
}

impl Operands<NdArray> {
    fn map<T>(self, f: impl Fn(TensorData) -> T) -> [T; 6] {
        [
            f(self.projected.into_data()),
            f(self.recurrent.into_data()),
            f(self.bias.into_data()),
            f(self.peephole.into_data()),
            f(self.h0.into_data()),
            f(self.c0.into_data()),
        ]
    }
}

/// Everything about the problem that is not a tensor.
#[derive(Debug, Clone)]
struct Layout {
    recurrence: Recurrence,
    dims: cpu::Dims,
    has_bias: bool,
    lengths: Option<Vec<usize>>,
    reverse: bool,
}

impl Layout {
    fn inputs(&self, [xp, w_t, bias, peephole, h0, c0]: [Vec<f32>; 6]) -> cpu::Inputs {
        let has_cell = self.recurrence.has_cell();
        cpu::Inputs {
            recurrence: self.recurrence,
            dims: self.dims,
            xp,
            w_t,
            bias: self.has_bias.then_some(bias),
            peephole: matches!(self.recurrence, Recurrence::Lstm { peephole: true, .. })
                .then_some(peephole),
            h0,
            c0: has_cell.then_some(c0),
            lengths: self.lengths.clone(),
            reverse: self.reverse,
        }
    }

    fn gate_width(&self) -> usize {
        self.recurrence.gates() * self.dims.hidden
    }

    fn packed_shape(&self) -> [usize; 3] {
        let cpu::Dims {
            time,
            batch,
            hidden,
        } = self.dims;
        [self.recurrence.packed_rows(time), batch, hidden]
    }
}

/// The whole layer-direction as one autodiff node.
#[derive(Debug)]
struct FusedBackward;

#[derive(Debug)]
struct SavedForward {
    layout: Layout,
    inputs: cpu::Inputs,
    saved: cpu::Saved,
}

impl Backward<NdArray, 6> for FusedBackward {
    type State = Arc<SavedForward>;

    fn backward(
        self,
        ops: Ops<Self::State, 6>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let SavedForward {
            layout,
            inputs,
            saved,
        } = &*ops.state;
        let grad_out = primitive_to_vec::<3>(grads.consume::<NdArray>(&ops.node));
        let g = cpu::backward(inputs, saved, &grad_out);
        let cpu::Dims {
            time,
            batch,
            hidden,
        } = layout.dims;
        let gh = layout.gate_width();
        let shapes = [
            vec![time, batch, gh],
            vec![hidden, gh],
            vec![1, gh],
            vec![1, 3 * hidden],
            vec![batch, hidden],
            vec![batch, hidden],
        ];
        let values = [
            Some(g.xp),
            Some(g.w_t),
            g.bias,
            g.peephole,
            Some(g.h0),
            g.c0,
        ];
        for ((parent, grad), shape) in ops.parents.into_iter().zip(values).zip(shapes) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<NdArray>(node.id, vec_to_primitive(grad, shape));
            }
        }
    }
}

fn run_autodiff(layout: Layout, operands: Operands<CpuAutodiff>) -> Tensor<CpuAutodiff, 3> {
    let Operands {
        projected,
        recurrent,
        bias,
        peephole,
        h0,
        c0,
    } = operands;
    let projected = projected.into_primitive().tensor();
    let matrices = [recurrent, bias, peephole, h0, c0].map(|t| t.into_primitive().tensor());
    let nodes = [
        projected.node.clone(),
        matrices[0].node.clone(),
        matrices[1].node.clone(),
        matrices[2].node.clone(),
        matrices[3].node.clone(),
        matrices[4].node.clone(),
    ];
    let [w_t, bias, peephole, h0, c0] = matrices.map(|t| primitive_to_vec::<2>(t.primitive));
    let xp = primitive_to_vec::<3>(projected.primitive);
    let mut inputs = layout.inputs([xp, w_t, bias, peephole, h0, c0]);
    let shape = layout.packed_shape().to_vec();
    let output = match FusedBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (packed, saved) = cpu::forward(&inputs, true);
            // Backward reads the weights, not the projected inputs.
            inputs.xp = Vec::new();
            let state = SavedForward {
                layout,
                inputs,
                saved: saved.expect("forward saves when asked"),
            };
            prep.finish(Arc::new(state), vec_to_primitive(packed, shape))
        }
        OpsKind::UnTracked(prep) => {
            let (packed, _) = cpu::forward(&inputs, false);
            prep.finish(vec_to_primitive(packed, shape))
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

fn to_vec(data: TensorData) -> Vec<f32> {
    data.into_vec::<f32>()
        .expect("burn-ndarray's default float is f32")
}

fn from_vec<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<NdArray, D> {
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

fn vec_to_primitive(values: Vec<f32>, shape: Vec<usize>) -> burn_ndarray::NdArrayTensor {
    burn_ndarray::NdArrayTensor::from_data(TensorData::new(values, shape))
}

fn primitive_to_vec<const D: usize>(
    primitive: <NdArray as burn::tensor::backend::BackendTypes>::FloatTensorPrimitive,
) -> Vec<f32> {
    to_vec(Tensor::<NdArray, D>::from_primitive(TensorPrimitive::Float(primitive)).into_data())
}
