//! The time loop of one layer-direction on plain `f32` slices: forward with the
//! activations saved, and the hand-written backward through time.
//!
//! Layouts are row-major and batch-major, as the driver's tensors: the input `x` is
//! `[B·T, D]` (row `b·T + t`), the weights are `W_ihᵀ` `[D, G·H]` and `W_hhᵀ` `[H, G·H]`,
//! states are `[B, H]`; `xp` below names a row of the input projection `x·W_ihᵀ + b`.
//! The forward output is one flat buffer: the per-step outputs `[B, T, H]`, then the final
//! `h` `[B, H]` (and `c`), so that each part is a contiguous slice of it.
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

use super::isa::CpuIsa;
use super::math::{sigmoid, tanh};
use super::packed::{self, Blocking, PackedMatrix, Portable};
#[cfg(target_arch = "x86_64")]
use super::packed::{Avx2, Avx512};
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

/// Where a direction's results go in a layer's output `[B, T + 1 (+1), directions·H]`:
/// its `H` columns of every step, the final states as steps `T` (`h`) and `T + 1` (`c`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    pub direction: usize,
    pub directions: usize,
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
        } = self.slot;
        let steps = self.recurrence.output_steps(self.dims.time);
        ((b * steps + t) * directions + direction) * self.dims.hidden
    }

    /// Offset of this direction's final `h` (`which` 0) or `c` (1) of row `b`.
    fn final_at(&self, which: usize, b: usize) -> usize {
        self.output_at(b, self.dims.time + which)
    }

    /// `W_hhᵀ` packed for the forward product with `h` or, `transposed`, `W_hh` for the
    /// backward product with the gates' gradients; for the reset-before GRU, the `r` and `z`
    /// blocks, and apart the `n` block (which multiplies `r ⊙ h`).
    fn recurrent_blocks(&self, transposed: bool) -> (PackedMatrix, Option<PackedMatrix>) {
        let (hidden, gh) = (self.dims.hidden, self.gate_width());
        let pack = |m: Matrix, (k, n): (usize, usize)| {
            if transposed {
                m.t().pack((n, k))
            } else {
                m.pack((k, n))
            }
        };
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

/// Runs `job` on every item, spread over at most `threads` threads (the first share on the
/// calling thread), and returns the results in the items' order.
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
    let run = &run;
    std::thread::scope(|scope| {
        let mut grouped = grouped.into_iter();
        let first = grouped.next().expect("at least one group");
        let handles: Vec<_> = grouped
            .map(|group| scope.spawn(move || run(group)))
            .collect();
        let mut results = run(first);
        for handle in handles {
            results.extend(
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        results
    })
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

/// One thread's share of the forward pass.
struct ForwardJob<'a> {
    inputs: &'a Inputs<'a>,
    w_ih_t: &'a PackedMatrix,
    /// `W_hhᵀ`, or for the reset-before GRU its `r` and `z` columns and, apart, `W_hnᵀ`.
    w_t: &'a PackedMatrix,
    w_hn_t: Option<&'a PackedMatrix>,
    /// The biases padded to the packed widths: of the input side and of the recurrent side.
    input_bias: &'a [f32],
    recurrent_bias: &'a [f32],
    rows: Range<usize>,
    out: SharedRows,
    saved: Option<[SharedRows; 4]>,
}

multiversion!(forward_rows, forward_rows_with, ForwardJob<'_>, ());

/// One direction's weights packed and biases padded once per call.
struct Prepared {
    w_ih_t: PackedMatrix,
    w_t: PackedMatrix,
    w_hn_t: Option<PackedMatrix>,
    input_bias: Vec<f32>,
    recurrent_bias: Vec<f32>,
}

impl Inputs<'_> {
    fn prepare(&self) -> Prepared {
        let gh = self.gate_width();
        let w_ih_t = self.w_ih_t.pack((self.dims.input, gh));
        let (w_t, w_hn_t) = self.recurrent_blocks(false);
        let padded_bias = |bias: Option<&[f32]>, width: usize| {
            let mut padded = vec![0.0; width];
            if let Some(bias) = bias {
                padded[..bias.len()].copy_from_slice(bias);
            }
            padded
        };
        Prepared {
            input_bias: padded_bias(self.input_bias, w_ih_t.padded_columns()),
            recurrent_bias: padded_bias(self.bias, w_t.padded_columns()),
            w_ih_t,
            w_t,
            w_hn_t,
        }
    }
}

impl Saved {
    fn for_inputs(inputs: &Inputs) -> Self {
        let Dims {
            time,
            batch,
            hidden,
            ..
        } = inputs.dims;
        let recurrence = inputs.recurrence;
        // With every sequence full length every element is written before it is read;
        // otherwise the steps past a length stay zero (the weight gradients read them).
        let per_step = |width: usize| {
            let len = time * batch * width;
            if inputs.lengths.is_some() {
                Buffer::zeroed(len)
            } else {
                Buffer::with_stale_values(len)
            }
        };
        Self {
            acts: per_step(inputs.gate_width()),
            h_prev: per_step(hidden),
            c_prev: if recurrence.has_cell() {
                per_step(hidden)
            } else {
                Buffer::default()
            },
            aux: if recurrence.has_aux() {
                per_step(hidden)
            } else {
                Buffer::default()
            },
        }
    }
}

/// Runs a layer (one [`Inputs`] per direction, all of the same cell and sizes); returns
/// the packed output and, when `save`, what backward needs for each direction.
pub(crate) fn forward(
    layer: &[Inputs],
    save: bool,
    isa: CpuIsa,
    threads: usize,
) -> (Vec<f32>, Vec<Saved>) {
    let Dims {
        time,
        batch,
        hidden,
        ..
    } = layer[0].dims;
    let steps = layer[0].recurrence.output_steps(time);
    let mut out = vec![0.0; batch * steps * layer.len() * hidden];
    let mut saved: Vec<Saved> = if save {
        layer.iter().map(Saved::for_inputs).collect()
    } else {
        Vec::new()
    };
    let prepared: Vec<Prepared> = layer.iter().map(Inputs::prepare).collect();
    let out_rows = SharedRows::new(&mut out);
    let saved_rows: Vec<[SharedRows; 4]> = saved
        .iter_mut()
        .map(|s| {
            [&mut s.acts, &mut s.h_prev, &mut s.c_prev, &mut s.aux].map(|b| SharedRows::new(b))
        })
        .collect();
    on_threads(
        work_items(layer.len(), batch, threads),
        threads,
        |(d, rows)| {
            let prepared = &prepared[d];
            forward_rows(
                isa,
                &ForwardJob {
                    inputs: &layer[d],
                    w_ih_t: &prepared.w_ih_t,
                    w_t: &prepared.w_t,
                    w_hn_t: prepared.w_hn_t.as_ref(),
                    input_bias: &prepared.input_bias,
                    recurrent_bias: &prepared.recurrent_bias,
                    rows,
                    out: out_rows,
                    saved: saved_rows.get(d).copied(),
                },
            );
        },
    );
    (out, saved)
}

#[inline(always)]
fn forward_rows_with<K: Blocking>(job: &ForwardJob) {
    let inputs = job.inputs;
    let Dims {
        time,
        hidden,
        input,
        ..
    } = inputs.dims;
    let recurrence = inputs.recurrence;
    let gh = inputs.gate_width();
    let rows = job.rows.clone();
    let state_rows = rows.start * hidden..rows.end * hidden;
    let mut h = inputs.h0[state_rows.clone()].to_vec();
    let mut c = inputs
        .c0
        .map(|c0| c0[state_rows.clone()].to_vec())
        .unwrap_or_default();
    let (x_width, h_width) = (job.w_ih_t.padded_columns(), job.w_t.padded_columns());
    let mut xp = vec![0.0; rows.len() * x_width];
    let mut hh = vec![0.0; rows.len() * h_width];
    // Reset-before GRU: `r, z` per row, `r ⊙ h`, and its product with `W_hnᵀ`.
    let n_width = job.w_hn_t.map_or(0, PackedMatrix::padded_columns);
    let mut rz = vec![0.0; job.w_hn_t.map_or(0, |_| rows.len() * 2 * hidden)];
    let mut rh = vec![0.0; job.w_hn_t.map_or(0, |_| rows.len() * hidden)];
    let mut hn = vec![0.0; rows.len() * n_width];
    let zero_row = vec![0.0; n_width];
    let mut acts_scratch = vec![0.0; gh];
    let mut aux_scratch = vec![0.0; hidden];
    let no_peephole = vec![0.0; 3 * hidden];
    let peephole = inputs.peephole.unwrap_or(&no_peephole);
    for t in inputs.steps(false) {
        // This step's input rows, one every `T · D` values.
        let x = &inputs.x[(rows.start * time + t) * input..];
        // SAFETY: `multiversion!` runs this body with `K` only where the CPU has its ISA.
        unsafe {
            packed::gemm::<K>(
                rows.len(),
                x,
                (time * input, 1),
                job.w_ih_t,
                &mut xp,
                x_width,
                Some(job.input_bias),
            );
            packed::gemm::<K>(
                rows.len(),
                &h,
                (hidden, 1),
                job.w_t,
                &mut hh,
                h_width,
                Some(job.recurrent_bias),
            );
        }
        if let Some(w_hn_t) = job.w_hn_t {
            for r in 0..rows.len() {
                reset_before_gates(
                    &xp[r * x_width..],
                    &hh[r * h_width..],
                    &h[r * hidden..(r + 1) * hidden],
                    &mut rz[r * 2 * hidden..(r + 1) * 2 * hidden],
                    &mut rh[r * hidden..(r + 1) * hidden],
                );
            }
            // SAFETY: as above.
            unsafe {
                packed::gemm::<K>(
                    rows.len(),
                    &rh,
                    (hidden, 1),
                    w_hn_t,
                    &mut hn,
                    n_width,
                    Some(&zero_row),
                )
            };
        }
        for (r, b) in rows.clone().enumerate() {
            if !inputs.valid(t, b) {
                continue;
            }
            let at = b * time + t;
            let xp = &xp[r * x_width..r * x_width + gh];
            let hh = &hh[r * h_width..(r + 1) * h_width];
            let h = &mut h[r * hidden..(r + 1) * hidden];
            // SAFETY: row `b` of step `t` belongs to this thread alone.
            let (acts, aux) = match &job.saved {
                Some([acts, h_prev, c_prev, aux]) => unsafe {
                    h_prev.slice(at * hidden, hidden).copy_from_slice(h);
                    if recurrence.has_cell() {
                        c_prev
                            .slice(at * hidden, hidden)
                            .copy_from_slice(&c[r * hidden..(r + 1) * hidden]);
                    }
                    let aux = if recurrence.has_aux() {
                        aux.slice(at * hidden, hidden)
                    } else {
                        &mut aux_scratch[..]
                    };
                    (acts.slice(at * gh, gh), aux)
                },
                None => (&mut acts_scratch[..], &mut aux_scratch[..]),
            };
            match recurrence {
                Recurrence::Rnn(act) => rnn_row(act, xp, hh, h, acts),
                Recurrence::Lstm {
                    peephole: p,
                    coupled,
                } => {
                    let c = &mut c[r * hidden..(r + 1) * hidden];
                    let row = LstmRow {
                        xp,
                        hh,
                        peephole,
                        h,
                        c,
                        acts,
                    };
                    match (p, coupled) {
                        (false, false) => row.run::<false, false>(),
                        (false, true) => row.run::<false, true>(),
                        (true, false) => row.run::<true, false>(),
                        (true, true) => row.run::<true, true>(),
                    }
                }
                Recurrence::GruResetAfter => gru_row(xp, hh, h, acts, aux),
                Recurrence::GruResetBefore => gru_reset_before_row(
                    xp,
                    &rz[r * 2 * hidden..(r + 1) * 2 * hidden],
                    &rh[r * hidden..(r + 1) * hidden],
                    &hn[r * n_width..],
                    h,
                    acts,
                    aux,
                ),
            }
            // SAFETY: as above.
            unsafe { job.out.slice(inputs.output_at(b, t), hidden) }.copy_from_slice(h);
        }
    }
    for (r, b) in rows.clone().enumerate() {
        let row = r * hidden..(r + 1) * hidden;
        // SAFETY: row `b`'s final states belong to this thread alone.
        unsafe { job.out.slice(inputs.final_at(0, b), hidden) }.copy_from_slice(&h[row.clone()]);
        if recurrence.has_cell() {
            // SAFETY: as above.
            unsafe { job.out.slice(inputs.final_at(1, b), hidden) }.copy_from_slice(&c[row]);
        }
    }
}

#[inline(always)]
fn rnn_row(act: Nonlinearity, xp: &[f32], hh: &[f32], h: &mut [f32], acts: &mut [f32]) {
    let n = h.len();
    let (xp, hh, acts) = (&xp[..n], &hh[..n], &mut acts[..n]);
    match act {
        Nonlinearity::Tanh => {
            for j in 0..n {
                let y = tanh(xp[j] + hh[j]);
                acts[j] = y;
                h[j] = y;
            }
        }
        Nonlinearity::Relu => {
            for j in 0..n {
                let y = (xp[j] + hh[j]).max(0.0);
                acts[j] = y;
                h[j] = y;
            }
        }
        Nonlinearity::Sigmoid => {
            for j in 0..n {
                let y = sigmoid(xp[j] + hh[j]);
                acts[j] = y;
                h[j] = y;
            }
        }
    }
}

/// Gate block `k` (`H` = `n` wide) of a row of gates.
#[inline(always)]
fn gate_block(row: &[f32], k: usize, n: usize) -> &[f32] {
    &row[k * n..(k + 1) * n]
}

/// The first `G` gate blocks of a row of gates.
#[inline(always)]
fn gate_blocks<const G: usize>(row: &[f32], n: usize) -> [&[f32]; G] {
    std::array::from_fn(|k| gate_block(row, k, n))
}

/// One row of an LSTM step, gate blocks in the order i, f, g, o.
struct LstmRow<'a> {
    xp: &'a [f32],
    hh: &'a [f32],
    peephole: &'a [f32],
    h: &'a mut [f32],
    c: &'a mut [f32],
    acts: &'a mut [f32],
}

impl LstmRow<'_> {
    #[inline(always)]
    fn run<const PEEPHOLE: bool, const COUPLED: bool>(self) {
        let n = self.h.len();
        let [xi, xf, xg, xo] = gate_blocks::<4>(self.xp, n);
        let [hi, hf, hg, ho] = gate_blocks::<4>(self.hh, n);
        let [pi, pf, po] = gate_blocks::<3>(self.peephole, n);
        let (ai, rest) = self.acts[..4 * n].split_at_mut(n);
        let (af, rest) = rest.split_at_mut(n);
        let (ag, ao) = rest.split_at_mut(n);
        let (h, c) = (&mut self.h[..n], &mut self.c[..n]);
        for j in 0..n {
            let cp = c[j];
            let peep = |p: &[f32], state: f32| if PEEPHOLE { p[j] * state } else { 0.0 };
            let i = sigmoid(xi[j] + hi[j] + peep(pi, cp));
            let f = if COUPLED {
                1.0 - i
            } else {
                sigmoid(xf[j] + hf[j] + peep(pf, cp))
            };
            let g = tanh(xg[j] + hg[j]);
            let cn = f * cp + i * g;
            let o = sigmoid(xo[j] + ho[j] + peep(po, cn));
            let tc = tanh(cn);
            ai[j] = i;
            af[j] = f;
            ag[j] = g;
            ao[j] = o;
            c[j] = cn;
            h[j] = o * tc;
        }
    }
}

/// One row of a reset-after GRU step, gate blocks r, z, n; `hh_n` receives `W_hn h + b_hn`.
#[inline(always)]
fn gru_row(xp: &[f32], hh: &[f32], h: &mut [f32], acts: &mut [f32], hh_n: &mut [f32]) {
    let n = h.len();
    let [xr, xz, xn] = gate_blocks::<3>(xp, n);
    let [hr, hz, hn] = gate_blocks::<3>(hh, n);
    let (ar, rest) = acts[..3 * n].split_at_mut(n);
    let (az, an) = rest.split_at_mut(n);
    let hh_n = &mut hh_n[..n];
    for j in 0..n {
        let r = sigmoid(xr[j] + hr[j]);
        let z = sigmoid(xz[j] + hz[j]);
        let nn = tanh(xn[j] + r * hn[j]);
        ar[j] = r;
        az[j] = z;
        an[j] = nn;
        hh_n[j] = hn[j];
        h[j] = nn + z * (h[j] - nn);
    }
}

/// The reset-before GRU's `r` and `z` (into `rz`) and `r ⊙ h` for one row.
#[inline(always)]
fn reset_before_gates(xp: &[f32], hh: &[f32], h: &[f32], rz: &mut [f32], rh: &mut [f32]) {
    let n = h.len();
    let (xr, xz) = (gate_block(xp, 0, n), gate_block(xp, 1, n));
    let (hr, hz) = (gate_block(hh, 0, n), gate_block(hh, 1, n));
    let (ar, az) = rz[..2 * n].split_at_mut(n);
    let rh = &mut rh[..n];
    for j in 0..n {
        let r = sigmoid(xr[j] + hr[j]);
        ar[j] = r;
        az[j] = sigmoid(xz[j] + hz[j]);
        rh[j] = r * h[j];
    }
}

/// The rest of a reset-before GRU step for one row: `hn` is `(r ⊙ h)·W_hnᵀ`; `acts`
/// receives r, z, n and `aux` receives `r ⊙ h`.
#[inline(always)]
fn gru_reset_before_row(
    xp: &[f32],
    rz: &[f32],
    rh: &[f32],
    hn: &[f32],
    h: &mut [f32],
    acts: &mut [f32],
    aux: &mut [f32],
) {
    let n = h.len();
    let (xn, hn, z) = (gate_block(xp, 2, n), &hn[..n], gate_block(rz, 1, n));
    acts[..2 * n].copy_from_slice(&rz[..2 * n]);
    aux[..n].copy_from_slice(&rh[..n]);
    let an = &mut acts[2 * n..3 * n];
    for j in 0..n {
        let nn = tanh(xn[j] + hn[j]);
        an[j] = nn;
        h[j] = nn + z[j] * (h[j] - nn);
    }
}

/// One thread's share of the backward pass.
struct BackwardJob<'a> {
    inputs: &'a Inputs<'a>,
    /// The saved activations, which backward overwrites with the gates' gradients (each
    /// thread its own rows), and the rest of [`Saved`].
    acts: SharedRows,
    h_prev: &'a [f32],
    c_prev: &'a [f32],
    aux: &'a [f32],
    grad_out: &'a [f32],
    /// `W_hh` `[G·H, H]` and `W_ih` `[G·H, D]`: what `dh` and `dx` are products with; for the
    /// reset-before GRU `w_hh` holds the `r`, `z` rows and `w_hn` the `n` rows.
    w_hh: &'a PackedMatrix,
    w_hn: Option<&'a PackedMatrix>,
    w_ih: &'a PackedMatrix,
    rows: Range<usize>,
}

/// One thread's gradients: of its rows of the initial state and the input, and its shares
/// of the weight and bias gradients (summed over its rows and all steps).
struct BackwardRows {
    dh: Vec<f32>,
    dc: Vec<f32>,
    /// `[rows·T, D]` (padded to the packed width).
    dx: Buffer,
    /// `dW_ihᵀ` `[D, G·H]` and `dW_hhᵀ` `[H, G·H]`.
    d_w_ih: Vec<f32>,
    d_w_hh: Vec<f32>,
    /// Column sums of the gradient as the input product and the recurrent product see it.
    d_input_bias: Vec<f32>,
    d_bias: Vec<f32>,
    d_peephole: Vec<f32>,
}

multiversion!(
    backward_rows,
    backward_rows_with,
    BackwardJob<'_>,
    BackwardRows
);

/// Backpropagation through time of a layer (one [`Inputs`] and [`Saved`] per direction).
/// `grad_out` is the gradient of the packed output. Returns the gradient of the input `x`
/// (summed over the directions) and each direction's other gradients.
pub(crate) fn backward(
    layer: &[Inputs],
    saved: &mut [Saved],
    grad_out: &[f32],
    isa: CpuIsa,
    threads: usize,
) -> (Vec<f32>, Vec<Grads>) {
    let Dims {
        time,
        batch,
        hidden,
        input,
    } = layer[0].dims;
    let gh = layer[0].gate_width();
    let packed: Vec<_> = layer
        .iter()
        .map(|inputs| {
            let (w_hh, w_hn) = inputs.recurrent_blocks(true);
            (w_hh, w_hn, inputs.w_ih_t.t().pack((gh, input)))
        })
        .collect();
    let saved: Vec<(SharedRows, &Saved)> = saved
        .iter_mut()
        .map(|s| (SharedRows::new(&mut s.acts), &*s))
        .collect();
    let parts = on_threads(
        work_items(layer.len(), batch, threads),
        threads,
        |(d, rows)| {
            let (w_hh, w_hn, w_ih) = &packed[d];
            let (acts, saved) = &saved[d];
            let part = backward_rows(
                isa,
                &BackwardJob {
                    inputs: &layer[d],
                    acts: *acts,
                    h_prev: &saved.h_prev,
                    c_prev: &saved.c_prev,
                    aux: &saved.aux,
                    grad_out,
                    w_hh,
                    w_hn: w_hn.as_ref(),
                    w_ih,
                    rows: rows.clone(),
                },
            );
            (d, rows, part)
        },
    );
    let mut grads: Vec<Grads> = layer
        .iter()
        .map(|inputs| Grads {
            w_ih_t: vec![0.0; input * gh],
            input_bias: inputs.input_bias.map(|_| vec![0.0; gh]),
            w_t: vec![0.0; hidden * gh],
            bias: inputs.bias.map(|_| vec![0.0; gh]),
            peephole: inputs.peephole.map(|_| vec![0.0; 3 * hidden]),
            h0: Vec::with_capacity(batch * hidden),
            c0: inputs
                .recurrence
                .has_cell()
                .then(|| Vec::with_capacity(batch * hidden)),
        })
        .collect();
    let mut d_x = vec![0.0; batch * time * input];
    let add = |sum: &mut [f32], part: &[f32]| sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    for (d, rows, part) in parts {
        let x_rows = &mut d_x[rows.start * time * input..rows.end * time * input];
        let padded = part.dx.len() / (rows.len() * time);
        for (sum, row) in x_rows
            .chunks_exact_mut(input)
            .zip(part.dx.chunks_exact(padded))
        {
            add(sum, &row[..input]);
        }
        let grads = &mut grads[d];
        add(&mut grads.w_ih_t, &part.d_w_ih);
        add(&mut grads.w_t, &part.d_w_hh);
        if let Some(sum) = &mut grads.input_bias {
            add(sum, &part.d_input_bias);
        }
        if let Some(sum) = &mut grads.bias {
            add(sum, &part.d_bias);
        }
        if let Some(sum) = &mut grads.peephole {
            add(sum, &part.d_peephole);
        }
        grads.h0.extend(part.dh);
        if let Some(c0) = &mut grads.c0 {
            c0.extend(part.dc);
        }
    }
    (d_x, grads)
}

#[inline(always)]
fn backward_rows_with<K: Blocking>(job: &BackwardJob) -> BackwardRows {
    let inputs = job.inputs;
    let Dims {
        time,
        hidden,
        input,
        ..
    } = inputs.dims;
    let recurrence = inputs.recurrence;
    let gh = inputs.gate_width();
    let rows = job.rows.clone();
    let padded = job.w_hh.padded_columns();
    let mut dh = vec![0.0; rows.len() * padded];
    for (r, b) in rows.clone().enumerate() {
        let at = inputs.final_at(0, b);
        dh[r * padded..r * padded + hidden].copy_from_slice(&job.grad_out[at..at + hidden]);
    }
    let mut dc: Vec<f32> = if recurrence.has_cell() {
        rows.clone()
            .flat_map(|b| &job.grad_out[inputs.final_at(1, b)..][..hidden])
            .copied()
            .collect()
    } else {
        Vec::new()
    };
    let mut d_peephole = vec![0.0; 3 * hidden];
    let no_peephole = vec![0.0; 3 * hidden];
    let peephole = inputs.peephole.unwrap_or(&no_peephole);
    // This thread's rows of every per-step array: rows `b·T + t` for its batch rows.
    let block = rows.start * time..rows.end * time;
    // The gradient of the gates' pre-activations, as the input product sees it (`d_xp`) and
    // as the recurrent product does (`d_hh`, GRU only: they differ in the `n` block). `d_xp`
    // takes the place of the saved activations, a step's rows once they are read (into
    // `step_acts`); steps past a length stay zero in both.
    // SAFETY: these rows of the activations belong to this thread alone.
    let d_xp = unsafe { job.acts.slice(block.start * gh, block.len() * gh) };
    let mut step_acts = vec![0.0; rows.len() * gh];
    let is_gru = recurrence == Recurrence::GruResetAfter;
    let mut d_hh = if is_gru {
        Buffer::zeroed(block.len() * gh)
    } else {
        Buffer::default()
    };
    // Reset-before GRU: the gradient of `r ⊙ h`.
    let n_width = job.w_hn.map_or(0, PackedMatrix::padded_columns);
    let mut d_rh = vec![0.0; rows.len() * n_width];
    for t in inputs.steps(true) {
        for (r, b) in rows.clone().enumerate() {
            if inputs.valid(t, b) {
                let local = r * time + t;
                step_acts[r * gh..(r + 1) * gh]
                    .copy_from_slice(&d_xp[local * gh..(local + 1) * gh]);
            }
        }
        if let Some(w_hn) = job.w_hn {
            for (r, b) in rows.clone().enumerate() {
                if inputs.valid(t, b) {
                    let (at, local) = (b * time + t, r * time + t);
                    reset_before_grad_z_n(
                        &step_acts[r * gh..(r + 1) * gh],
                        &job.h_prev[at * hidden..(at + 1) * hidden],
                        &job.grad_out[inputs.output_at(b, t)..][..hidden],
                        &mut dh[r * padded..r * padded + hidden],
                        &mut d_xp[local * gh..(local + 1) * gh],
                    );
                }
            }
            d_rh.fill(0.0);
            // SAFETY: `multiversion!` runs this body with `K` only where the CPU has its ISA.
            unsafe {
                packed::gemm::<K>(
                    rows.len(),
                    &d_xp[t * gh + 2 * hidden..],
                    (time * gh, 1),
                    w_hn,
                    &mut d_rh,
                    n_width,
                    None,
                );
            }
        }

        for (r, b) in rows.clone().enumerate() {
            if !inputs.valid(t, b) {
                continue;
            }
            let at = b * time + t;
            let local = r * time + t;
            let span = at * hidden..(at + 1) * hidden;
            let acts = &step_acts[r * gh..(r + 1) * gh];
            let g_out = &job.grad_out[inputs.output_at(b, t)..][..hidden];
            let dh = &mut dh[r * padded..r * padded + hidden];
            let dxp = &mut d_xp[local * gh..(local + 1) * gh];
            match recurrence {
                Recurrence::Rnn(act) => rnn_grad_row(act, acts, g_out, dh, dxp),
                Recurrence::Lstm {
                    peephole: p,
                    coupled,
                } => {
                    let row = LstmGradRow {
                        acts,
                        c_prev: &job.c_prev[span.clone()],
                        g_out,
                        peephole,
                        dh,
                        dc: &mut dc[r * hidden..(r + 1) * hidden],
                        dxp,
                        d_peephole: &mut d_peephole,
                    };
                    match (p, coupled) {
                        (false, false) => row.run::<false, false>(),
                        (false, true) => row.run::<false, true>(),
                        (true, false) => row.run::<true, false>(),
                        (true, true) => row.run::<true, true>(),
                    }
                }
                Recurrence::GruResetAfter => gru_grad_row(
                    acts,
                    &job.h_prev[span.clone()],
                    &job.aux[span],
                    g_out,
                    dh,
                    dxp,
                    &mut d_hh[local * gh..(local + 1) * gh],
                ),
                Recurrence::GruResetBefore => {
                    reset_before_grad_r(acts, &job.h_prev[span], &d_rh[r * n_width..], dh, dxp)
                }
            }
        }
        // dh_{t-1} += d_hh[t] · W_hh (rows of finished sequences are zero in d_hh); this
        // step's rows are one every `T · G·H` values.
        let d_step: &[f32] = if is_gru { &d_hh } else { d_xp };
        // SAFETY: `multiversion!` runs this body with `K` only where the CPU has its ISA.
        unsafe {
            packed::gemm::<K>(
                rows.len(),
                &d_step[t * gh..],
                (time * gh, 1),
                job.w_hh,
                &mut dh,
                padded,
                None,
            );
        }
    }
    let d_all: &[f32] = if is_gru { &d_hh } else { d_xp };
    // dx = d_xp · W_ih over this thread's rows of every step. The weight gradients come
    // transposed, as the operands hold them: dW_ihᵀ = xᵀ · d_xp and dW_hhᵀ = h_prevᵀ · d_all,
    // with the gate gradients packed once as the right operand and `xᵀ`, `h_prevᵀ` read in
    // place (their rows are the products' reduction).
    let x_rows = &inputs.x[block.start * input..block.end * input];
    let h_prev_rows = &job.h_prev[block.start * hidden..block.end * hidden];
    let mut dx = Buffer::zeroed(block.len() * job.w_ih.padded_columns());
    // SAFETY: as above.
    unsafe {
        let w_ih = job.w_ih;
        packed::gemm::<K>(
            block.len(),
            d_xp,
            (gh, 1),
            w_ih,
            &mut dx,
            w_ih.padded_columns(),
            None,
        );
    }
    let rows_all = block.len();
    // SAFETY (every call below): `multiversion!` runs this body with `K` only where the CPU
    // has its ISA.
    let d_w_hh = unsafe {
        match recurrence {
            // The recurrent product sees `d_hh`, the input product `d_xp`.
            Recurrence::GruResetAfter => {
                let [d_w_hh] =
                    gate_products::<K, 1>(&d_hh, gh, gh, rows_all, [(h_prev_rows, hidden)]);
                d_w_hh
            }
            Recurrence::GruResetBefore => {
                // The `n` columns of W_hhᵀ multiply `r ⊙ h`, saved in `aux`.
                let rh_rows = &job.aux[block.start * hidden..block.end * hidden];
                let [rz] =
                    gate_products::<K, 1>(d_xp, gh, 2 * hidden, rows_all, [(h_prev_rows, hidden)]);
                let [n] = gate_products::<K, 1>(
                    &d_xp[2 * hidden..],
                    gh,
                    hidden,
                    rows_all,
                    [(rh_rows, hidden)],
                );
                rz.chunks_exact(2 * hidden)
                    .zip(n.chunks_exact(hidden))
                    .flat_map(|(rz, n)| rz.iter().chain(n))
                    .copied()
                    .collect()
            }
            _ => Vec::new(),
        }
    };
    // SAFETY: as above.
    let (d_w_ih, d_w_hh) = unsafe {
        if d_w_hh.is_empty() {
            // RNN and LSTM: both products share the gate gradients.
            let [ih, hh] = gate_products::<K, 2>(
                d_xp,
                gh,
                gh,
                rows_all,
                [(x_rows, input), (h_prev_rows, hidden)],
            );
            (ih, hh)
        } else {
            let [ih] = gate_products::<K, 1>(d_xp, gh, gh, rows_all, [(x_rows, input)]);
            (ih, d_w_hh)
        }
    };
    let column_sums = |values: &[f32]| {
        let mut sums = vec![0.0; gh];
        for row in values.chunks_exact(gh) {
            sums.iter_mut().zip(row).for_each(|(s, d)| *s += d);
        }
        sums
    };
    BackwardRows {
        dh: dh
            .chunks_exact(padded)
            .flat_map(|row| &row[..hidden])
            .copied()
            .collect(),
        dc,
        dx,
        d_w_ih,
        d_w_hh,
        d_input_bias: column_sums(d_xp),
        d_bias: column_sums(d_all),
        d_peephole,
    }
}

/// `aᵀ · G` for each `(a, n)` of `lefts`, `a` `[rows, n]` row-major, and `G` the first
/// `width` columns of `gates` (`[rows, ·]`, row stride `stride`): `[n, width]` each. These are
/// the weight gradients, summed over the rows (every step of every sequence). `G` is packed a
/// chunk of rows at a time, so that the packed chunk stays in cache and never costs more
/// memory than the chunk.
///
/// # Safety
/// The CPU has the instruction set `K` is compiled for.
#[inline(always)]
unsafe fn gate_products<K: Blocking, const N: usize>(
    gates: &[f32],
    stride: usize,
    width: usize,
    rows: usize,
    lefts: [(&[f32], usize); N],
) -> [Vec<f32>; N] {
    // One reduction piece of the product per chunk.
    const CHUNK: usize = packed::DEPTH;
    let ldc = width.div_ceil(packed::PANEL) * packed::PANEL;
    let mut sums = lefts.map(|(_, n)| Buffer::zeroed(n * ldc));
    for start in (0..rows).step_by(CHUNK) {
        let len = CHUNK.min(rows - start);
        let chunk = PackedMatrix::pack(&gates[start * stride..], (len, width), (stride, 1));
        for ((a, n), sum) in lefts.iter().zip(&mut sums) {
            // SAFETY: the caller vouches for the instruction set.
            unsafe { packed::gemm::<K>(*n, &a[start * n..], (1, *n), &chunk, sum, ldc, None) };
        }
    }
    sums.map(|sum| {
        sum.chunks_exact(ldc)
            .flat_map(|row| &row[..width])
            .copied()
            .collect()
    })
}

/// One row of an RNN's backward step: `dxp = (dh + g_out) · act′`, then `dh ← 0` (the
/// product with `W_hh` adds the next `dh`). One loop per activation, so that each vectorises.
#[inline(always)]
fn rnn_grad_row(act: Nonlinearity, acts: &[f32], g_out: &[f32], dh: &mut [f32], dxp: &mut [f32]) {
    let n = dh.len();
    let (acts, g_out, dxp) = (&acts[..n], &g_out[..n], &mut dxp[..n]);
    macro_rules! rows {
        ($act:expr) => {
            for j in 0..n {
                dxp[j] = (dh[j] + g_out[j]) * $act.derivative_from_output(acts[j]);
                dh[j] = 0.0;
            }
        };
    }
    match act {
        Nonlinearity::Tanh => rows!(Nonlinearity::Tanh),
        Nonlinearity::Relu => rows!(Nonlinearity::Relu),
        Nonlinearity::Sigmoid => rows!(Nonlinearity::Sigmoid),
    }
}

/// The first half of a reset-before GRU's backward step for one row: the `z` and `n`
/// gradients into `dxp`, and `dh ← (dh + g_out)·z` (the direct path to `h_{t−1}`).
#[inline(always)]
fn reset_before_grad_z_n(
    acts: &[f32],
    h_prev: &[f32],
    g_out: &[f32],
    dh: &mut [f32],
    dxp: &mut [f32],
) {
    let n = dh.len();
    let (az, an) = (gate_block(acts, 1, n), gate_block(acts, 2, n));
    let (h_prev, g_out) = (&h_prev[..n], &g_out[..n]);
    let (dxz, dxn) = dxp[n..3 * n].split_at_mut(n);
    for j in 0..n {
        let (z, nn) = (az[j], an[j]);
        let dh_j = dh[j] + g_out[j];
        dxn[j] = dh_j * (1.0 - z) * (1.0 - nn * nn);
        dxz[j] = dh_j * (h_prev[j] - nn) * z * (1.0 - z);
        dh[j] = dh_j * z;
    }
}

/// The second half: with `d_rh` the gradient of `r ⊙ h`, the `r` gradient into `dxp` and
/// the path through `r ⊙ h` into `dh`.
#[inline(always)]
fn reset_before_grad_r(
    acts: &[f32],
    h_prev: &[f32],
    d_rh: &[f32],
    dh: &mut [f32],
    dxp: &mut [f32],
) {
    let n = dh.len();
    let (ar, h_prev, d_rh) = (gate_block(acts, 0, n), &h_prev[..n], &d_rh[..n]);
    let dxr = &mut dxp[..n];
    for j in 0..n {
        let r = ar[j];
        dxr[j] = d_rh[j] * h_prev[j] * r * (1.0 - r);
        dh[j] += d_rh[j] * r;
    }
}

/// One row of the LSTM's backward step.
struct LstmGradRow<'a> {
    acts: &'a [f32],
    c_prev: &'a [f32],
    g_out: &'a [f32],
    peephole: &'a [f32],
    dh: &'a mut [f32],
    dc: &'a mut [f32],
    dxp: &'a mut [f32],
    d_peephole: &'a mut [f32],
}

impl LstmGradRow<'_> {
    #[inline(always)]
    fn run<const PEEPHOLE: bool, const COUPLED: bool>(self) {
        let n = self.dh.len();
        let [ai, af, ag, ao] = gate_blocks::<4>(self.acts, n);
        let [pi, pf, po] = gate_blocks::<3>(self.peephole, n);
        let (c_prev, g_out) = (&self.c_prev[..n], &self.g_out[..n]);
        let (di, rest) = self.dxp[..4 * n].split_at_mut(n);
        let (df, rest) = rest.split_at_mut(n);
        let (dg, d_o) = rest.split_at_mut(n);
        let (dpi, rest) = self.d_peephole[..3 * n].split_at_mut(n);
        let (dpf, dpo) = rest.split_at_mut(n);
        let (dh, dc) = (&mut self.dh[..n], &mut self.dc[..n]);
        for j in 0..n {
            let (i, f, g, o) = (ai[j], af[j], ag[j], ao[j]);
            let cp = c_prev[j];
            // `c_t` and `tanh(c_t)` exactly as the forward step computed them.
            let tc = tanh(f * cp + i * g);
            let dh_j = dh[j] + g_out[j];
            let da_o = dh_j * tc * o * (1.0 - o);
            let mut dc_j = dc[j] + dh_j * o * (1.0 - tc * tc);
            if PEEPHOLE {
                dc_j += da_o * po[j];
                dpo[j] += da_o * (f * cp + i * g);
            }
            let da_g = dc_j * i * (1.0 - g * g);
            let (da_i, da_f) = if COUPLED {
                (dc_j * (g - cp) * i * (1.0 - i), 0.0)
            } else {
                (dc_j * g * i * (1.0 - i), dc_j * cp * f * (1.0 - f))
            };
            let mut dc_prev = dc_j * f;
            if PEEPHOLE {
                dc_prev += da_i * pi[j] + da_f * pf[j];
                dpi[j] += da_i * cp;
                dpf[j] += da_f * cp;
            }
            di[j] = da_i;
            df[j] = da_f;
            dg[j] = da_g;
            d_o[j] = da_o;
            dc[j] = dc_prev;
            dh[j] = 0.0;
        }
    }
}

#[inline(always)]
fn gru_grad_row(
    acts: &[f32],
    h_prev: &[f32],
    hh_n: &[f32],
    g_out: &[f32],
    dh: &mut [f32],
    dxp: &mut [f32],
    dhh: &mut [f32],
) {
    let n = dh.len();
    let [ar, az, an] = gate_blocks::<3>(acts, n);
    let (h_prev, hh_n, g_out) = (&h_prev[..n], &hh_n[..n], &g_out[..n]);
    let (dxr, rest) = dxp[..3 * n].split_at_mut(n);
    let (dxz, dxn) = rest.split_at_mut(n);
    let (dhr, rest) = dhh[..3 * n].split_at_mut(n);
    let (dhz, dhn) = rest.split_at_mut(n);
    for j in 0..n {
        let (r, z, nn) = (ar[j], az[j], an[j]);
        let dh_j = dh[j] + g_out[j];
        let da_n = dh_j * (1.0 - z) * (1.0 - nn * nn);
        let da_z = dh_j * (h_prev[j] - nn) * z * (1.0 - z);
        let da_r = da_n * hh_n[j] * r * (1.0 - r);
        dxr[j] = da_r;
        dxz[j] = da_z;
        dxn[j] = da_n;
        dhr[j] = da_r;
        dhz[j] = da_z;
        dhn[j] = da_n * r;
        dh[j] = dh_j * z;
    }
}
