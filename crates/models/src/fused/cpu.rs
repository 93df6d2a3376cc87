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
//! `W_hhᵀ`, both packed once per call (see [`super::gemm`]), and the gate arithmetic on
//! the products' rows while they are in cache; the input projection of the whole sequence
//! is never stored.

use std::ops::Range;

use super::gemm::{self, Blocking, PackedMatrix, Portable};
#[cfg(target_arch = "x86_64")]
use super::gemm::{Avx2, Avx512};
use super::isa::CpuIsa;
use super::math::{sigmoid, tanh};
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
}

impl Recurrence {
    pub(crate) fn gates(self) -> usize {
        match self {
            Self::Rnn(_) => 1,
            Self::Lstm { .. } => 4,
            Self::GruResetAfter => 3,
        }
    }

    pub(crate) fn has_cell(self) -> bool {
        matches!(self, Self::Lstm { .. })
    }

    /// Rows of the packed output: `T` steps, the final `h`, and the final `c` for an LSTM.
    pub(crate) fn packed_rows(self, time: usize) -> usize {
        time + 1 + usize::from(self.has_cell())
    }

    /// Whether the saved forward keeps a per-step `[B, H]` block beside the gates.
    fn has_aux(self) -> bool {
        !matches!(self, Self::Rnn(_))
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

/// A matrix read in place: element `(i, j)` at `values[i·strides.0 + j·strides.1]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub values: &'a [f32],
    pub strides: (usize, usize),
}

/// Everything the forward pass reads, borrowed from the caller's buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub recurrence: Recurrence,
    pub dims: Dims,
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
    /// LSTM peepholes `[3, H]` (i, f, o).
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
#[derive(Debug, Default)]
pub(crate) struct Saved {
    /// Activated gates `[B, T, G·H]` (the RNN's output for the RNN).
    acts: Vec<f32>,
    /// The state each step started from, `[B, T, H]`.
    h_prev: Vec<f32>,
    /// LSTM only: the cell state each step started from, `[B, T, H]`.
    c_prev: Vec<f32>,
    /// LSTM: `tanh(c_t)`; GRU: the recurrent `n` block `W_hn h + b_hn`; empty for the RNN.
    aux: Vec<f32>,
}

/// Gradients of every input of [`forward`].
#[derive(Debug)]
pub(crate) struct Grads {
    pub x: Vec<f32>,
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

/// Runs `job` on every range of rows, the first on the calling thread, and returns the
/// results in order.
fn on_threads<T: Send>(
    ranges: Vec<Range<usize>>,
    job: impl Fn(Range<usize>) -> T + Sync,
) -> Vec<T> {
    let mut ranges = ranges.into_iter();
    let first = ranges.next().expect("at least one range");
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranges.map(|rows| scope.spawn(|| job(rows))).collect();
        let mut results = vec![job(first)];
        results.extend(handles.into_iter().map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
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
    w_t: &'a PackedMatrix,
    /// The biases padded to the packed widths: of the input side and of the recurrent side.
    input_bias: &'a [f32],
    recurrent_bias: &'a [f32],
    rows: Range<usize>,
    out: SharedRows,
    saved: Option<[SharedRows; 4]>,
}

multiversion!(forward_rows, forward_rows_with, ForwardJob<'_>, ());

/// Runs the sequence; returns the packed output and, when `save`, what backward needs.
pub(crate) fn forward(
    inputs: &Inputs,
    save: bool,
    isa: CpuIsa,
    threads: usize,
) -> (Vec<f32>, Option<Saved>) {
    let Dims {
        time,
        batch,
        hidden,
        ..
    } = inputs.dims;
    let recurrence = inputs.recurrence;
    let gh = inputs.gate_width();
    let per_step = |width: usize| vec![0.0; time * batch * width];
    let mut out = vec![0.0; recurrence.packed_rows(time) * batch * hidden];
    let mut saved = save.then(|| Saved {
        acts: per_step(gh),
        h_prev: per_step(hidden),
        c_prev: if recurrence.has_cell() {
            per_step(hidden)
        } else {
            Vec::new()
        },
        aux: if recurrence.has_aux() {
            per_step(hidden)
        } else {
            Vec::new()
        },
    });
    let w_ih_t = PackedMatrix::pack(
        inputs.w_ih_t.values,
        (inputs.dims.input, gh),
        inputs.w_ih_t.strides,
    );
    let w_t = PackedMatrix::pack(inputs.w_t.values, (hidden, gh), inputs.w_t.strides);
    let padded_bias = |bias: Option<&[f32]>| {
        let mut padded = vec![0.0; w_t.padded_columns()];
        if let Some(bias) = bias {
            padded[..gh].copy_from_slice(bias);
        }
        padded
    };
    let (input_bias, recurrent_bias) = (padded_bias(inputs.input_bias), padded_bias(inputs.bias));
    let out_rows = SharedRows::new(&mut out);
    let saved_rows = saved.as_mut().map(|s| {
        [&mut s.acts, &mut s.h_prev, &mut s.c_prev, &mut s.aux]
            .map(|buffer| SharedRows::new(buffer))
    });
    on_threads(row_ranges(batch, threads), |rows| {
        forward_rows(
            isa,
            &ForwardJob {
                inputs,
                w_ih_t: &w_ih_t,
                w_t: &w_t,
                input_bias: &input_bias,
                recurrent_bias: &recurrent_bias,
                rows,
                out: out_rows,
                saved: saved_rows,
            },
        );
    });
    (out, saved)
}

#[inline(always)]
fn forward_rows_with<K: Blocking>(job: &ForwardJob) {
    let inputs = job.inputs;
    let Dims {
        time,
        batch,
        hidden,
        input,
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
    let padded = job.w_t.padded_columns();
    let mut xp = vec![0.0; rows.len() * padded];
    let mut hh = vec![0.0; rows.len() * padded];
    let mut acts_scratch = vec![0.0; gh];
    let mut aux_scratch = vec![0.0; hidden];
    let no_peephole = vec![0.0; 3 * hidden];
    let peephole = inputs.peephole.unwrap_or(&no_peephole);
    for t in inputs.steps(false) {
        // This step's input rows, one every `T · D` values.
        let x = &inputs.x[(rows.start * time + t) * input..];
        // SAFETY: `multiversion!` runs this body with `K` only where the CPU has its ISA.
        unsafe {
            gemm::gemm::<K>(
                rows.len(),
                x,
                time * input,
                job.w_ih_t,
                &mut xp,
                padded,
                Some(job.input_bias),
            );
            gemm::gemm::<K>(
                rows.len(),
                &h,
                hidden,
                job.w_t,
                &mut hh,
                padded,
                Some(job.recurrent_bias),
            );
        }
        for (r, b) in rows.clone().enumerate() {
            if !inputs.valid(t, b) {
                continue;
            }
            let at = b * time + t;
            let xp = &xp[r * padded..r * padded + gh];
            let hh = &hh[r * padded..r * padded + gh];
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
                        tanh_c: aux,
                    };
                    match (p, coupled) {
                        (false, false) => row.run::<false, false>(),
                        (false, true) => row.run::<false, true>(),
                        (true, false) => row.run::<true, false>(),
                        (true, true) => row.run::<true, true>(),
                    }
                }
                Recurrence::GruResetAfter => gru_row(xp, hh, h, acts, aux),
            }
            // SAFETY: as above.
            unsafe { job.out.slice(at * hidden, hidden) }.copy_from_slice(h);
        }
    }
    let bh = batch * hidden;
    // SAFETY: these rows of the final state belong to this thread alone.
    unsafe {
        job.out
            .slice(time * bh + state_rows.start, state_rows.len())
    }
    .copy_from_slice(&h);
    if recurrence.has_cell() {
        // SAFETY: as above.
        unsafe {
            job.out
                .slice((time + 1) * bh + state_rows.start, state_rows.len())
        }
        .copy_from_slice(&c);
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

/// One row of an LSTM step, gate blocks in the order i, f, g, o.
struct LstmRow<'a> {
    xp: &'a [f32],
    hh: &'a [f32],
    peephole: &'a [f32],
    h: &'a mut [f32],
    c: &'a mut [f32],
    acts: &'a mut [f32],
    tanh_c: &'a mut [f32],
}

impl LstmRow<'_> {
    #[inline(always)]
    fn run<const PEEPHOLE: bool, const COUPLED: bool>(self) {
        let n = self.h.len();
        let block = |v, k| gate_block(v, k, n);
        let (xi, xf, xg, xo) = (
            block(self.xp, 0),
            block(self.xp, 1),
            block(self.xp, 2),
            block(self.xp, 3),
        );
        let (hi, hf, hg, ho) = (
            block(self.hh, 0),
            block(self.hh, 1),
            block(self.hh, 2),
            block(self.hh, 3),
        );
        let (pi, pf, po) = (
            block(self.peephole, 0),
            block(self.peephole, 1),
            block(self.peephole, 2),
        );
        let (ai, rest) = self.acts[..4 * n].split_at_mut(n);
        let (af, rest) = rest.split_at_mut(n);
        let (ag, ao) = rest.split_at_mut(n);
        let (h, c, tanh_c) = (&mut self.h[..n], &mut self.c[..n], &mut self.tanh_c[..n]);
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
            tanh_c[j] = tc;
            c[j] = cn;
            h[j] = o * tc;
        }
    }
}

/// One row of a reset-after GRU step, gate blocks r, z, n; `hh_n` receives `W_hn h + b_hn`.
#[inline(always)]
fn gru_row(xp: &[f32], hh: &[f32], h: &mut [f32], acts: &mut [f32], hh_n: &mut [f32]) {
    let n = h.len();
    let block = |v, k| gate_block(v, k, n);
    let (xr, xz, xn) = (block(xp, 0), block(xp, 1), block(xp, 2));
    let (hr, hz, hn) = (block(hh, 0), block(hh, 1), block(hh, 2));
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

/// One thread's share of the backward pass.
struct BackwardJob<'a> {
    inputs: &'a Inputs<'a>,
    saved: &'a Saved,
    grad_out: &'a [f32],
    /// `W_hh` `[G·H, H]`, the matrix `dh` is multiplied with.
    w: &'a PackedMatrix,
    rows: Range<usize>,
    d_xp: SharedRows,
    /// The GRU's gradient as the recurrent matmul sees it (differs from `d_xp` in `n`).
    d_hh: SharedRows,
}

/// One thread's gradients of the initial state and its share of the peephole gradient.
struct BackwardRows {
    dh: Vec<f32>,
    dc: Vec<f32>,
    d_peephole: Vec<f32>,
}

multiversion!(
    backward_rows,
    backward_rows_with,
    BackwardJob<'_>,
    BackwardRows
);

/// Backpropagation through time. `grad_out` is the gradient of the packed output.
pub(crate) fn backward(
    inputs: &Inputs,
    saved: &Saved,
    grad_out: &[f32],
    isa: CpuIsa,
    threads: usize,
) -> Grads {
    let Dims {
        time,
        batch,
        hidden,
        ..
    } = inputs.dims;
    let recurrence = inputs.recurrence;
    let gh = inputs.gate_width();
    let is_gru = recurrence == Recurrence::GruResetAfter;
    let mut d_xp = vec![0.0; time * batch * gh];
    let mut d_hh = if is_gru {
        vec![0.0; time * batch * gh]
    } else {
        Vec::new()
    };
    let (row_stride, col_stride) = inputs.w_t.strides;
    let w = PackedMatrix::pack(inputs.w_t.values, (gh, hidden), (col_stride, row_stride));
    let (d_xp_rows, d_hh_rows) = (SharedRows::new(&mut d_xp), SharedRows::new(&mut d_hh));
    let parts = on_threads(row_ranges(batch, threads), |rows| {
        backward_rows(
            isa,
            &BackwardJob {
                inputs,
                saved,
                grad_out,
                w: &w,
                rows,
                d_xp: d_xp_rows,
                d_hh: d_hh_rows,
            },
        )
    });
    let mut d_h0 = Vec::with_capacity(batch * hidden);
    let mut d_c0 = Vec::with_capacity(batch * hidden);
    let mut d_peephole = vec![0.0; 3 * hidden];
    for part in parts {
        d_h0.extend(part.dh);
        d_c0.extend(part.dc);
        d_peephole
            .iter_mut()
            .zip(&part.d_peephole)
            .for_each(|(sum, d)| *sum += d);
    }
    let d_all = if is_gru { &d_hh } else { &d_xp };
    // dW_hhᵀ = Σ_t h_{t-1}ᵀ · d_hh[t], as one matmul over all steps.
    let mut d_w_t = vec![0.0; hidden * gh];
    strided_gemm(
        (hidden, time * batch, gh),
        &saved.h_prev,
        (1, hidden),
        d_all,
        (gh, 1),
        &mut d_w_t,
    );
    let column_sums = |values: &[f32]| {
        let mut sums = vec![0.0; gh];
        for row in values.chunks_exact(gh) {
            sums.iter_mut().zip(row).for_each(|(s, d)| *s += d);
        }
        sums
    };
    let d_bias = inputs.bias.map(|_| column_sums(d_all));
    let d_input_bias = inputs.input_bias.map(|_| column_sums(&d_xp));
    let input = inputs.dims.input;
    // dW_ihᵀ = xᵀ · d_xp and dx = d_xp · W_ih over all steps.
    let mut d_w_ih_t = vec![0.0; input * gh];
    strided_gemm(
        (input, time * batch, gh),
        inputs.x,
        (1, input),
        &d_xp,
        (gh, 1),
        &mut d_w_ih_t,
    );
    let mut d_x = vec![0.0; time * batch * input];
    let (row_stride, col_stride) = inputs.w_ih_t.strides;
    strided_gemm(
        (time * batch, gh, input),
        &d_xp,
        (gh, 1),
        inputs.w_ih_t.values,
        (col_stride, row_stride),
        &mut d_x,
    );
    Grads {
        x: d_x,
        w_ih_t: d_w_ih_t,
        input_bias: d_input_bias,
        w_t: d_w_t,
        bias: d_bias,
        peephole: inputs.peephole.map(|_| d_peephole),
        h0: d_h0,
        c0: recurrence.has_cell().then_some(d_c0),
    }
}

#[inline(always)]
fn backward_rows_with<K: Blocking>(job: &BackwardJob) -> BackwardRows {
    let inputs = job.inputs;
    let saved = job.saved;
    let Dims {
        time,
        batch,
        hidden,
        ..
    } = inputs.dims;
    let recurrence = inputs.recurrence;
    let gh = inputs.gate_width();
    let bh = batch * hidden;
    let rows = job.rows.clone();
    let padded = job.w.padded_columns();
    let mut dh = vec![0.0; rows.len() * padded];
    for (r, b) in rows.clone().enumerate() {
        dh[r * padded..r * padded + hidden]
            .copy_from_slice(&job.grad_out[time * bh + b * hidden..time * bh + (b + 1) * hidden]);
    }
    let mut dc = if recurrence.has_cell() {
        job.grad_out[(time + 1) * bh + rows.start * hidden..(time + 1) * bh + rows.end * hidden]
            .to_vec()
    } else {
        Vec::new()
    };
    let mut d_peephole = vec![0.0; 3 * hidden];
    let no_peephole = vec![0.0; 3 * hidden];
    let peephole = inputs.peephole.unwrap_or(&no_peephole);
    for t in inputs.steps(true) {
        for (r, b) in rows.clone().enumerate() {
            if !inputs.valid(t, b) {
                continue;
            }
            let at = b * time + t;
            let span = at * hidden..(at + 1) * hidden;
            let acts = &saved.acts[at * gh..(at + 1) * gh];
            let g_out = &job.grad_out[span.clone()];
            let dh = &mut dh[r * padded..r * padded + hidden];
            // SAFETY: row `b` of step `t` belongs to this thread alone.
            let dxp = unsafe { job.d_xp.slice(at * gh, gh) };
            match recurrence {
                Recurrence::Rnn(act) => {
                    for j in 0..hidden {
                        dxp[j] = (dh[j] + g_out[j]) * act.derivative_from_output(acts[j]);
                        dh[j] = 0.0;
                    }
                }
                Recurrence::Lstm {
                    peephole: p,
                    coupled,
                } => {
                    let row = LstmGradRow {
                        acts,
                        c_prev: &saved.c_prev[span.clone()],
                        tanh_c: &saved.aux[span.clone()],
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
                Recurrence::GruResetAfter => {
                    // SAFETY: as above.
                    let dhh = unsafe { job.d_hh.slice(at * gh, gh) };
                    gru_grad_row(
                        acts,
                        &saved.h_prev[span.clone()],
                        &saved.aux[span],
                        g_out,
                        dh,
                        dxp,
                        dhh,
                    );
                }
            }
        }
        // dh_{t-1} += d_hh[t] · W_hh (rows of finished sequences are zero in d_hh).
        let d_step = if recurrence == Recurrence::GruResetAfter {
            &job.d_hh
        } else {
            &job.d_xp
        };
        // This thread's rows of step `t`, one every `T · G·H` values.
        let first = (rows.start * time + t) * gh;
        let span = (rows.len() - 1) * time * gh + gh;
        // SAFETY: the batch rows of this range belong to this thread alone, and no other
        // slice of them is alive.
        let d_step = unsafe { d_step.slice(first, span) };
        // SAFETY: `multiversion!` runs this body with `K` only where the CPU has its ISA.
        unsafe { gemm::gemm::<K>(rows.len(), d_step, time * gh, job.w, &mut dh, padded, None) };
    }
    BackwardRows {
        dh: dh
            .chunks_exact(padded)
            .flat_map(|row| &row[..hidden])
            .copied()
            .collect(),
        dc,
        d_peephole,
    }
}

/// One row of the LSTM's backward step.
struct LstmGradRow<'a> {
    acts: &'a [f32],
    c_prev: &'a [f32],
    tanh_c: &'a [f32],
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
        let block = |v, k| gate_block(v, k, n);
        let (ai, af, ag, ao) = (
            block(self.acts, 0),
            block(self.acts, 1),
            block(self.acts, 2),
            block(self.acts, 3),
        );
        let (pi, pf, po) = (
            block(self.peephole, 0),
            block(self.peephole, 1),
            block(self.peephole, 2),
        );
        let (c_prev, tanh_c, g_out) = (&self.c_prev[..n], &self.tanh_c[..n], &self.g_out[..n]);
        let (di, rest) = self.dxp[..4 * n].split_at_mut(n);
        let (df, rest) = rest.split_at_mut(n);
        let (dg, d_o) = rest.split_at_mut(n);
        let (dpi, rest) = self.d_peephole[..3 * n].split_at_mut(n);
        let (dpf, dpo) = rest.split_at_mut(n);
        let (dh, dc) = (&mut self.dh[..n], &mut self.dc[..n]);
        for j in 0..n {
            let (i, f, g, o) = (ai[j], af[j], ag[j], ao[j]);
            let (cp, tc) = (c_prev[j], tanh_c[j]);
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
    let block = |v, k| gate_block(v, k, n);
    let (ar, az, an) = (block(acts, 0), block(acts, 1), block(acts, 2));
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

/// `c[m×n] = a[m×k]·b[k×n]` with explicit strides (row stride, column stride), through
/// `matrixmultiply` (for the one large product of the backward pass).
fn strided_gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(k == 0 || (a.len() > last(m, k, rsa, csa) && b.len() > last(k, n, rsb, csb)));
    assert!(c.len() >= m * n);
    // SAFETY: the asserts above keep every index the strides reach inside the slices, and
    // `c` is exclusively borrowed.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
