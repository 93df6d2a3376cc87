//! The time loop of one layer-direction on plain `f32` slices: forward with the
//! activations saved, and the hand-written backward through time.
//!
//! Layouts are row-major and batch-major, as the driver's tensors: the input `x` is
//! `[B·T, D]` (row `b·T + t`), the weights are `W_ihᵀ` `[D, G·H]` and `W_hhᵀ` `[H, G·H]`,
//! states are `[B, H]`; `xp` below names a row of the input projection `x·W_ihᵀ + b`.
//! The forward output is one flat buffer of the per-step outputs and the final `h` (and
//! `c`), in one of the two [`Slot::finals_apart`] layouts.
//! Steps at or past a sequence's length output zeros and leave its state alone, which is
//! the driver's packed-sequence meaning in both directions.
//!
//! Batch rows never interact, forward or backward, so the rows are split between threads
//! that each run the whole sequence for their rows: no synchronisation inside the time
//! loop. Each step is two products, of the step's input with `W_ihᵀ` and of the state with
//! `W_hhᵀ`, both packed once per call (see [`super::packed`]), and the gate arithmetic on
//! the products' rows while they are in cache; the input projection of the whole sequence
//! is never stored.

use std::ops::Range;

use super::packed::PackedMatrix;
use super::pool::Buffer;
use crate::cell::Nonlinearity;

/// The cell equations a kernel runs; see the cell types for the formulas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Recurrence {
    Rnn(Nonlinearity),
    Lstm {
        peephole: bool,
        coupled: bool,
    },
    /// GRU with the reset gate applied after the recurrent matmul (PyTorch's form).
    GruResetAfter,
    /// GRU with the reset gate applied to `h` before its product with `W_hn` (Cho et al.).
    GruResetBefore,
}

impl Recurrence {
    pub(crate) fn gates(self) -> usize {
        match self {
            Self::Rnn(_) => 1,
            Self::Lstm { .. } => 4,
            Self::GruResetAfter | Self::GruResetBefore => 3,
        }
    }

    pub(crate) fn has_cell(self) -> bool {
        matches!(self, Self::Lstm { .. })
    }

    /// Steps of a layer's output `[B, steps, directions·H]`: the `T` outputs, then the
    /// final `h`, then for an LSTM the final `c`.
    pub(crate) fn output_steps(self, time: usize) -> usize {
        time + 1 + usize::from(self.has_cell())
    }

    /// Whether the saved forward keeps a per-step `[B, H]` block beside the gates (the
    /// GRUs; the LSTM's `tanh(c_t)` is recomputed in backward from the gates and `c_{t−1}`,
    /// the same float operations, so bit for bit).
    fn has_aux(self) -> bool {
        matches!(self, Self::GruResetAfter | Self::GruResetBefore)
    }
}

/// Sizes of one layer-direction's problem.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub time: usize,
    pub batch: usize,
    pub hidden: usize,
    /// Features per input step `D`.
    pub input: usize,
}

/// Where a direction's results go in a layer's output: its `H` columns of every step of
/// `directions·H`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub direction: usize,
    pub directions: usize,
    /// The per-step outputs `[B, T, directions·H]`, then the final `h` (and `c`) as
    /// `[1 (+1), B, directions·H]`, so that both are contiguous tensors of the buffer;
    /// otherwise one `[B, T + 1 (+1), directions·H]` with the final states as steps `T`
    /// (`h`) and `T + 1` (`c`) (an autodiff node has one output).
    pub finals_apart: bool,
}

/// A matrix read in place: element `(i, j)` at `values[i·strides.0 + j·strides.1]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub values: &'a [f32],
    pub strides: (usize, usize),
}

impl Matrix<'_> {
    /// The same values read as the transpose.
    fn t(self) -> Self {
        Matrix {
            values: self.values,
            strides: (self.strides.1, self.strides.0),
        }
    }

    /// The columns from `first` on.
    fn columns_from(self, first: usize) -> Self {
        Matrix {
            values: &self.values[first * self.strides.1..],
            strides: self.strides,
        }
    }

    /// Its first `k` rows and `n` columns, laid out in panels.
    fn pack(self, (k, n): (usize, usize)) -> PackedMatrix {
        PackedMatrix::pack(self.values, (k, n), self.strides)
    }
}

/// Everything the forward pass reads, borrowed from the caller's buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub recurrence: Recurrence,
    pub dims: Dims,
    pub slot: Slot,
    /// `[B·T, D]`.
    pub x: &'a [f32],
    /// `W_ihᵀ`, `[D, G·H]`.
    pub w_ih_t: Matrix<'a>,
    /// Bias of the input projection, `[G·H]`.
    pub input_bias: Option<&'a [f32]>,
    /// `W_hhᵀ`, `[H, G·H]`.
    pub w_t: Matrix<'a>,
    /// Bias added to `h·W_hhᵀ` at every step, `[G·H]` (the reset-after GRU's `b_hh`).
    pub bias: Option<&'a [f32]>,
    /// LSTM peepholes `[1, 3·H]`: the i, f and o vectors side by side.
    pub peephole: Option<&'a [f32]>,
    /// `[B, H]`.
    pub h0: &'a [f32],
    /// `[B, H]`, LSTM only.
    pub c0: Option<&'a [f32]>,
    /// Valid steps per sequence; all `T` when `None`.
    pub lengths: Option<&'a [usize]>,
    pub reverse: bool,
}

impl Inputs<'_> {
    /// Offset of this direction's output at row `b`, step `t` in the layer's output.
    fn output_at(&self, b: usize, t: usize) -> usize {
        let Slot {
            direction,
            directions,
            finals_apart,
        } = self.slot;
        let steps = if finals_apart {
            self.dims.time
        } else {
            self.recurrence.output_steps(self.dims.time)
        };
        ((b * steps + t) * directions + direction) * self.dims.hidden
    }

    /// Offset of this direction's final `h` (`which` 0) or `c` (1) of row `b`.
    fn final_at(&self, which: usize, b: usize) -> usize {
        let Dims {
            time,
            batch,
            hidden,
            ..
        } = self.dims;
        let Slot {
            direction,
            directions,
            finals_apart,
        } = self.slot;
        if finals_apart {
            (batch * time + which * batch + b) * directions * hidden + direction * hidden
        } else {
            self.output_at(b, time + which)
        }
    }

    /// `W_hhᵀ` packed by `pack(W_hhᵀ, (k, n))`: for the forward product with `h` or, packed
    /// transposed, for the backward product with the gates' gradients; for the reset-before
    /// GRU, the `r` and `z` blocks, and apart the `n` block (which multiplies `r ⊙ h`).
    fn recurrent_blocks<M>(&self, pack: impl Fn(Matrix, (usize, usize)) -> M) -> (M, Option<M>) {
        let (hidden, gh) = (self.dims.hidden, self.gate_width());
        if self.recurrence == Recurrence::GruResetBefore {
            let n_block = self.w_t.columns_from(2 * hidden);
            (
                pack(self.w_t, (hidden, 2 * hidden)),
                Some(pack(n_block, (hidden, hidden))),
            )
        } else {
            (pack(self.w_t, (hidden, gh)), None)
        }
    }

    fn gate_width(&self) -> usize {
        self.recurrence.gates() * self.dims.hidden
    }

    fn valid(&self, t: usize, b: usize) -> bool {
        self.lengths.is_none_or(|lengths| t < lengths[b])
    }

    fn steps(&self, backward: bool) -> Box<dyn Iterator<Item = usize>> {
        let time = self.dims.time;
        if self.reverse != backward {
            Box::new((0..time).rev())
        } else {
            Box::new(0..time)
        }
    }
}

/// What the backward pass needs from the forward pass, by row `b·T + t` as `x`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Saved {
    /// Activated gates `[B, T, G·H]` (the RNN's output for the RNN).
    acts: Buffer,
    /// The state each step started from, `[B, T, H]`.
    h_prev: Buffer,
    /// LSTM only: the cell state each step started from, `[B, T, H]`.
    c_prev: Buffer,
    /// Reset-after GRU: the recurrent `n` block `W_hn h + b_hn`; reset-before GRU: `r ⊙ h`;
    /// empty for the RNN and the LSTM.
    aux: Buffer,
}

/// Gradients of a direction's operands of [`forward`] (the input's is returned apart).
#[derive(Debug)]
pub(crate) struct Grads {
    pub w_ih_t: Vec<f32>,
    pub input_bias: Option<Vec<f32>>,
    pub w_t: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub peephole: Option<Vec<f32>>,
    pub h0: Vec<f32>,
    pub c0: Option<Vec<f32>>,
}

impl Nonlinearity {
    /// The derivative written in terms of the output `y`.
    #[inline(always)]
    fn derivative_from_output(self, y: f32) -> f32 {
        match self {
            Self::Tanh => 1.0 - y * y,
            Self::Relu => f32::from(u8::from(y > 0.0)),
            Self::Sigmoid => y * (1.0 - y),
        }
    }
}

/// A buffer that several threads write, each at its own batch rows.
#[derive(Clone, Copy)]
struct SharedRows {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: threads only reach the buffer through `SharedRows::slice`, at disjoint rows.
unsafe impl Send for SharedRows {}
unsafe impl Sync for SharedRows {}

impl SharedRows {
    fn new(buffer: &mut [f32]) -> Self {
        Self {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
        }
    }

    /// `buffer[start..start + len]`.
    ///
    /// # Safety
    /// No other live slice from this buffer overlaps the range, and the buffer outlives it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start + len <= self.len, "row range inside the buffer");
        // SAFETY: in bounds (checked above); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Splits `batch` rows into at most `threads` contiguous, nearly equal ranges.
fn row_ranges(batch: usize, threads: usize) -> Vec<Range<usize>> {
    let threads = threads.clamp(1, batch.max(1));
    (0..threads)
        .map(|i| (i * batch / threads)..((i + 1) * batch / threads))
        .collect()
}

/// The work of a layer: each direction's rows split between its share of the threads (the
/// two directions of a bidirectional layer run at the same time).
fn work_items(directions: usize, batch: usize, threads: usize) -> Vec<(usize, Range<usize>)> {
    let per_direction = (threads / directions).max(1);
    (0..directions)
        .flat_map(|d| {
            row_ranges(batch, per_direction)
                .into_iter()
                .map(move |rows| (d, rows))
        })
        .collect()
}

/// Runs `job` on every item, spread over at most `threads` of rayon's worker threads, and
/// returns the results in the items' order. One group runs on the calling thread.
fn on_threads<I: Send, T: Send>(
    items: Vec<I>,
    threads: usize,
    job: impl Fn(I) -> T + Sync,
) -> Vec<T> {
    let count = items.len();
    let groups = threads.clamp(1, count.max(1));
    let mut grouped: Vec<Vec<I>> = (0..groups).map(|_| Vec::new()).collect();
    for (index, item) in items.into_iter().enumerate() {
        grouped[index * groups / count].push(item);
    }
    let run = |group: Vec<I>| group.into_iter().map(&job).collect::<Vec<T>>();
    if groups == 1 {
        return grouped.into_iter().flat_map(run).collect();
    }
    let mut results: Vec<Vec<T>> = (0..groups).map(|_| Vec::new()).collect();
    let run = &run;
    rayon::in_place_scope(|scope| {
        let mut pairs = grouped.into_iter().zip(results.iter_mut());
        let (first, first_slot) = pairs.next().expect("at least two groups");
        for (group, slot) in pairs {
            scope.spawn(move |_| *slot = run(group));
        }
        *first_slot = run(first);
    });
    results.into_iter().flatten().collect()
}

/// `fn $name(isa, job: &$job) -> $out` that runs `$body::<blocking>(job)` compiled for `isa`.
macro_rules! multiversion {
    ($name:ident, $body:ident, $job:ty, $out:ty) => {
        fn $name(isa: CpuIsa, job: &$job) -> $out {
            assert!(isa.is_supported(), "{isa:?} kernels on a CPU without it");
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512(job: &$job) -> $out {
                    $body::<Avx512>(job)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2(job: &$job) -> $out {
                    $body::<Avx2>(job)
                }
                match isa {
                    // SAFETY: the CPU supports the instruction set (asserted above).
                    CpuIsa::Avx512 => return unsafe { avx512(job) },
                    // SAFETY: as above.
                    CpuIsa::Avx2 => return unsafe { avx2(job) },
                    CpuIsa::Portable => {}
                }
            }
            $body::<Portable>(job)
        }
    };
}

mod backward;
mod forward;
mod step_matrix;

pub(crate) use backward::backward;
pub(crate) use forward::{PackedWeights, forward};
pub(crate) use step_matrix::QuantisedIsas;
