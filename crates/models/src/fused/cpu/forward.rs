//! The forward pass: each thread runs the whole sequence for its rows, saving what
//! backward needs.

use std::ops::Range;
use std::sync::Arc;

use super::step_matrix::{QuantisedIsas, StepMatrix};
use super::{Dims, Inputs, Matrix, Recurrence, Saved, SharedRows, on_threads, work_items};
use crate::cell::Nonlinearity;
use crate::fused::int8::Int8Scratch;
use crate::fused::math::{sigmoid, tanh};
#[cfg(target_arch = "x86_64")]
use crate::fused::packed::{Avx2, Avx512};
use crate::fused::packed::{Blocking, Portable};
use crate::fused::pool::Buffer;
use crate::precision::Precision;
use isa::CpuIsa;

/// One thread's share of the forward pass.
struct ForwardJob<'a> {
    inputs: &'a Inputs<'a>,
    w_ih_t: &'a StepMatrix,
    /// `W_hhᵀ`, or for the reset-before GRU its `r` and `z` columns and, apart, `W_hnᵀ`.
    w_t: &'a StepMatrix,
    w_hn_t: Option<&'a StepMatrix>,
    quantised_isas: QuantisedIsas,
    /// The biases padded to the packed widths: of the input side and of the recurrent side.
    input_bias: &'a [f32],
    recurrent_bias: &'a [f32],
    rows: Range<usize>,
    out: SharedRows,
    saved: Option<[SharedRows; 4]>,
}

multiversion!(forward_rows, forward_rows_with, ForwardJob<'_>, ());

/// One direction's weights laid out for the forward pass, at a [`Precision`].
#[derive(Debug)]
pub(crate) struct PackedWeights {
    w_ih_t: StepMatrix,
    w_t: StepMatrix,
    w_hn_t: Option<StepMatrix>,
}

impl PackedWeights {
    /// Bytes of weights held.
    pub(crate) fn bytes(&self) -> usize {
        self.w_ih_t.bytes() + self.w_t.bytes() + self.w_hn_t.as_ref().map_or(0, StepMatrix::bytes)
    }
}

/// One direction's packed weights and its biases padded to the packed widths.
struct Prepared<'a> {
    weights: &'a PackedWeights,
    input_bias: Vec<f32>,
    recurrent_bias: Vec<f32>,
}

impl Inputs<'_> {
    /// Its weights packed for [`forward`], stored at `precision`.
    pub(crate) fn pack_weights(&self, precision: Precision) -> PackedWeights {
        let pack = |m: Matrix, dims| StepMatrix::pack(m, dims, precision);
        let w_ih_t = pack(self.w_ih_t, (self.dims.input, self.gate_width()));
        let (w_t, w_hn_t) = self.recurrent_blocks(pack);
        PackedWeights {
            w_ih_t,
            w_t,
            w_hn_t,
        }
    }

    fn prepare<'w>(&self, weights: &'w PackedWeights) -> Prepared<'w> {
        let padded_bias = |bias: Option<&[f32]>, width: usize| {
            let mut padded = vec![0.0; width];
            if let Some(bias) = bias {
                padded[..bias.len()].copy_from_slice(bias);
            }
            padded
        };
        Prepared {
            input_bias: padded_bias(self.input_bias, weights.w_ih_t.padded_columns()),
            recurrent_bias: padded_bias(self.bias, weights.w_t.padded_columns()),
            weights,
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
/// the packed output and, when `save`, what backward needs for each direction. `packed`
/// holds each direction's weights packed by an earlier call ([`Inputs::pack_weights`]);
/// without it they are packed here, at f32. `quantised_isas` run the products of int8 and
/// bf16 weights.
pub(crate) fn forward(
    layer: &[Inputs],
    packed: Option<&[Arc<PackedWeights>]>,
    save: bool,
    (isa, quantised_isas): (CpuIsa, QuantisedIsas),
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
    let packed_here: Vec<PackedWeights> = match packed {
        Some(_) => Vec::new(),
        None => layer
            .iter()
            .map(|i| i.pack_weights(Precision::F32))
            .collect(),
    };
    let weights: Vec<&PackedWeights> = match packed {
        Some(packed) => packed.iter().map(|p| &**p).collect(),
        None => packed_here.iter().collect(),
    };
    let prepared: Vec<Prepared> = layer
        .iter()
        .zip(weights)
        .map(|(inputs, weights)| inputs.prepare(weights))
        .collect();
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
                    w_ih_t: &prepared.weights.w_ih_t,
                    w_t: &prepared.weights.w_t,
                    w_hn_t: prepared.weights.w_hn_t.as_ref(),
                    quantised_isas,
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
    let n_width = job.w_hn_t.map_or(0, StepMatrix::padded_columns);
    let mut rz = vec![0.0; job.w_hn_t.map_or(0, |_| rows.len() * 2 * hidden)];
    let mut rh = vec![0.0; job.w_hn_t.map_or(0, |_| rows.len() * hidden)];
    let mut hn = vec![0.0; rows.len() * n_width];
    let zero_row = vec![0.0; n_width];
    let mut acts_scratch = vec![0.0; gh];
    let mut aux_scratch = vec![0.0; hidden];
    let no_peephole = vec![0.0; 3 * hidden];
    let mut scratch = Int8Scratch::default();
    let peephole = inputs.peephole.unwrap_or(&no_peephole);
    let mut blocks = InputBlocks::for_job::<K>(job);
    for t in inputs.steps(false) {
        // SAFETY: `multiversion!` runs this body with `K` only where the CPU has its ISA.
        unsafe {
            match &mut blocks {
                Some(blocks) => blocks.copy_step::<K>(job, t, &mut xp, &mut scratch),
                None => {
                    // This step's input rows, one every `T · D` values.
                    let x = &inputs.x[(rows.start * time + t) * input..];
                    job.w_ih_t.product::<K>(
                        rows.len(),
                        x,
                        (time * input, 1),
                        &mut xp,
                        x_width,
                        Some(job.input_bias),
                        (&mut scratch, job.quantised_isas),
                    );
                }
            }
            job.w_t.product::<K>(
                rows.len(),
                &h,
                (hidden, 1),
                &mut hh,
                h_width,
                Some(job.recurrent_bias),
                (&mut scratch, job.quantised_isas),
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
                w_hn_t.product::<K>(
                    rows.len(),
                    &rh,
                    (hidden, 1),
                    &mut hn,
                    n_width,
                    Some(&zero_row),
                    (&mut scratch, job.quantised_isas),
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

/// Steps whose input projections one product computes in [`InputBlocks`].
const STEP_BLOCK: usize = 32;

/// The input projections `x_t·W_ihᵀ + b` of an inference job whose rows are too few to fill
/// a micro-kernel tile (batch 1, say), a block of steps at a time: `W_ihᵀ` is read once per
/// [`STEP_BLOCK`] steps instead of once per step. Each row of a product is computed alone
/// (the tiles' rows share only the weights they read), so the values are the per-step
/// products' bit for bit.
struct InputBlocks {
    /// Steps per block (fewer at the sequence's end).
    block: usize,
    /// `[rows, block, x_width]`: the projections of steps `first..first + len`.
    values: Vec<f32>,
    first: usize,
    len: usize,
}

impl InputBlocks {
    fn for_job<K: Blocking>(job: &ForwardJob) -> Option<Self> {
        let rows = job.rows.len();
        let time = job.inputs.dims.time;
        if job.saved.is_some() || rows >= K::ROWS || time < 2 {
            return None;
        }
        let block = STEP_BLOCK.min(time);
        Some(Self {
            block,
            values: vec![0.0; rows * block * job.w_ih_t.padded_columns()],
            first: 0,
            len: 0,
        })
    }

    /// Writes step `t`'s projections of every row into `xp` (`x_width` apart), computing
    /// the block of the next steps in the job's order first when `t` is not in this one.
    ///
    /// # Safety
    /// The CPU has the instruction set `K` is compiled for.
    #[inline(always)]
    unsafe fn copy_step<K: Blocking>(
        &mut self,
        job: &ForwardJob,
        t: usize,
        xp: &mut [f32],
        scratch: &mut Int8Scratch,
    ) {
        let Dims { time, input, .. } = job.inputs.dims;
        let x_width = job.w_ih_t.padded_columns();
        if !(self.first..self.first + self.len).contains(&t) {
            (self.first, self.len) = if job.inputs.reverse {
                let len = self.block.min(t + 1);
                (t + 1 - len, len)
            } else {
                (t, self.block.min(time - t))
            };
            for r in 0..job.rows.len() {
                let x = &job.inputs.x[((job.rows.start + r) * time + self.first) * input..];
                let out = &mut self.values[r * self.block * x_width..];
                // SAFETY: the caller vouches for the instruction set.
                unsafe {
                    job.w_ih_t.product::<K>(
                        self.len,
                        x,
                        (input, 1),
                        out,
                        x_width,
                        Some(job.input_bias),
                        (scratch, job.quantised_isas),
                    )
                };
            }
        }
        for r in 0..job.rows.len() {
            let from = (r * self.block + t - self.first) * x_width;
            xp[r * x_width..(r + 1) * x_width].copy_from_slice(&self.values[from..][..x_width]);
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
pub(super) fn gate_block(row: &[f32], k: usize, n: usize) -> &[f32] {
    &row[k * n..(k + 1) * n]
}

/// The first `G` gate blocks of a row of gates.
#[inline(always)]
pub(super) fn gate_blocks<const G: usize>(row: &[f32], n: usize) -> [&[f32]; G] {
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
    /// The step in passes of one nonlinearity each, rather than one pass over the units: a
    /// unit's gates form a chain of two dependent `sigmoid`s and a `tanh` (the output gate
    /// waits for the cell), too long for the CPU to overlap the next units with it, while
    /// the iterations of each pass are independent. Every element goes through the same
    /// operations in the same order either way, so the results are the same bits.
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
        let peep = |p: &[f32], j: usize, state: f32| if PEEPHOLE { p[j] * state } else { 0.0 };
        for j in 0..n {
            ai[j] = sigmoid(xi[j] + hi[j] + peep(pi, j, c[j]));
        }
        for j in 0..n {
            af[j] = if COUPLED {
                1.0 - ai[j]
            } else {
                sigmoid(xf[j] + hf[j] + peep(pf, j, c[j]))
            };
        }
        for j in 0..n {
            ag[j] = tanh(xg[j] + hg[j]);
        }
        for j in 0..n {
            c[j] = af[j] * c[j] + ai[j] * ag[j];
        }
        for j in 0..n {
            ao[j] = sigmoid(xo[j] + ho[j] + peep(po, j, c[j]));
        }
        for j in 0..n {
            h[j] = ao[j] * tanh(c[j]);
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
