//! Backpropagation through time, then the weight gradients as products over all steps.

use std::ops::Range;

use super::forward::{gate_block, gate_blocks};
use super::{Dims, Grads, Inputs, Recurrence, Saved, SharedRows, on_threads, work_items};
use crate::cell::Nonlinearity;
use crate::fused::math::tanh;
use crate::fused::packed::{self, Blocking, PackedMatrix, Portable};
#[cfg(target_arch = "x86_64")]
use crate::fused::packed::{Avx2, Avx512};
use crate::fused::pool::Buffer;
use isa::CpuIsa;

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
    /// reset-before GRU `w_hh` holds the `r`, `z` rows and `w_hn` the `n` rows. `w_ih` is
    /// `None` when nothing needs the input's gradient.
    w_hh: &'a PackedMatrix,
    w_hn: Option<&'a PackedMatrix>,
    w_ih: Option<&'a PackedMatrix>,
    rows: Range<usize>,
}

/// One thread's gradients: of its rows of the initial state and the input, and its shares
/// of the weight and bias gradients (summed over its rows and all steps).
struct BackwardRows {
    dh: Vec<f32>,
    dc: Vec<f32>,
    /// `[rows·T, D]` (padded to the packed width); empty when the input's gradient is not
    /// wanted.
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
/// (summed over the directions) when `input_grad` asks for it (a first layer's input, the
/// features, usually needs none), and each direction's other gradients.
pub(crate) fn backward(
    layer: &[Inputs],
    saved: &mut [Saved],
    grad_out: &[f32],
    input_grad: bool,
    isa: CpuIsa,
    threads: usize,
) -> (Option<Vec<f32>>, Vec<Grads>) {
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
            let (w_hh, w_hn) = inputs.recurrent_blocks(|m, (k, n)| m.t().pack((n, k)));
            let w_ih = input_grad.then(|| inputs.w_ih_t.t().pack((gh, input)));
            (w_hh, w_hn, w_ih)
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
                    w_ih: w_ih.as_ref(),
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
    let mut d_x = input_grad.then(|| vec![0.0; batch * time * input]);
    let add = |sum: &mut [f32], part: &[f32]| sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    for (d, rows, part) in parts {
        if let Some(d_x) = &mut d_x {
            let x_rows = &mut d_x[rows.start * time * input..rows.end * time * input];
            let padded = part.dx.len() / (rows.len() * time);
            for (sum, row) in x_rows
                .chunks_exact_mut(input)
                .zip(part.dx.chunks_exact(padded))
            {
                add(sum, &row[..input]);
            }
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
    // takes the place of the saved activations, a step's rows once they are read (the
    // LSTM's in place, the other cells' from a copy in `step_acts`); steps past a length
    // stay zero in both.
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
    // The LSTM's row reads a unit's four activations before it writes their gradients, so
    // it works on `d_xp` in place; the other cells read a step's activations from a copy.
    let in_place = recurrence.has_cell();
    for t in inputs.steps(true) {
        for (r, b) in rows.clone().enumerate() {
            if !in_place && inputs.valid(t, b) {
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
                        gates: dxp,
                        c_prev: &job.c_prev[span.clone()],
                        g_out,
                        peephole,
                        dh,
                        dc: &mut dc[r * hidden..(r + 1) * hidden],
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
    let mut dx = Buffer::default();
    if let Some(w_ih) = job.w_ih {
        dx = Buffer::zeroed(block.len() * w_ih.padded_columns());
        // SAFETY: as above.
        unsafe {
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
    /// The step's activations, replaced by the gradients of their pre-activations.
    gates: &'a mut [f32],
    c_prev: &'a [f32],
    g_out: &'a [f32],
    peephole: &'a [f32],
    dh: &'a mut [f32],
    dc: &'a mut [f32],
    d_peephole: &'a mut [f32],
}

impl LstmGradRow<'_> {
    #[inline(always)]
    fn run<const PEEPHOLE: bool, const COUPLED: bool>(self) {
        let n = self.dh.len();
        let [pi, pf, po] = gate_blocks::<3>(self.peephole, n);
        let (c_prev, g_out) = (&self.c_prev[..n], &self.g_out[..n]);
        let (di, rest) = self.gates[..4 * n].split_at_mut(n);
        let (df, rest) = rest.split_at_mut(n);
        let (dg, d_o) = rest.split_at_mut(n);
        let (dpi, rest) = self.d_peephole[..3 * n].split_at_mut(n);
        let (dpf, dpo) = rest.split_at_mut(n);
        let (dh, dc) = (&mut self.dh[..n], &mut self.dc[..n]);
        for j in 0..n {
            let (i, f, g, o) = (di[j], df[j], dg[j], d_o[j]);
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
