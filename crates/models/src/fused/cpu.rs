//! The time loop of one layer-direction on plain `f32` slices: forward with the
//! activations saved, and the hand-written backward through time.
//!
//! Layouts are row-major and time-major: the projected input `xp` is `[T, B, G·H]`, the
//! recurrent matrix `w_t` is `W_hhᵀ` `[H, G·H]`, states are `[B, H]`. The forward output is
//! packed as `[T + 1 (+1), B, H]`: the per-step outputs, then the final `h` (and `c`).
//! Steps at or past a sequence's length output zeros and leave its state alone, which is
//! the driver's packed-sequence meaning in both directions.

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
}

/// Sizes of one layer-direction's problem.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub time: usize,
    pub batch: usize,
    pub hidden: usize,
}

/// Everything the forward pass reads.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    pub recurrence: Recurrence,
    pub dims: Dims,
    /// `[T, B, G·H]`.
    pub xp: Vec<f32>,
    /// `W_hhᵀ`, `[H, G·H]`.
    pub w_t: Vec<f32>,
    /// Bias added to `h·W_hhᵀ` at every step, `[G·H]` (the reset-after GRU's `b_hh`).
    pub bias: Option<Vec<f32>>,
    /// LSTM peepholes `[3, H]` (i, f, o).
    pub peephole: Option<Vec<f32>>,
    /// `[B, H]`.
    pub h0: Vec<f32>,
    /// `[B, H]`, LSTM only.
    pub c0: Option<Vec<f32>>,
    /// Valid steps per sequence; all `T` when `None`.
    pub lengths: Option<Vec<usize>>,
    pub reverse: bool,
}

/// What the backward pass needs from the forward pass, indexed by time step.
#[derive(Debug, Default)]
pub(crate) struct Saved {
    /// Activated gates `[T, B, G·H]` (the RNN's output for the RNN).
    acts: Vec<f32>,
    /// The state each step started from, `[T, B, H]`.
    h_prev: Vec<f32>,
    /// LSTM only: the cell state each step started from, `[T, B, H]`.
    c_prev: Vec<f32>,
    /// LSTM: `tanh(c_t)`; GRU: the recurrent `n` block `W_hn h + b_hn`; empty for the RNN.
    aux: Vec<f32>,
}

/// Gradients of every input of [`forward`].
#[derive(Debug)]
pub(crate) struct Grads {
    pub xp: Vec<f32>,
    pub w_t: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub peephole: Option<Vec<f32>>,
    pub h0: Vec<f32>,
    pub c0: Option<Vec<f32>>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn tanh(x: f32) -> f32 {
    // 1 − 2/(e^{2x} + 1): one exp, saturates cleanly at ±1 for large |x|.
    1.0 - 2.0 / ((2.0 * x).exp() + 1.0)
}

impl Nonlinearity {
    fn scalar(self, x: f32) -> f32 {
        match self {
            Self::Tanh => tanh(x),
            Self::Relu => x.max(0.0),
            Self::Sigmoid => sigmoid(x),
        }
    }

    /// The derivative written in terms of the output `y`.
    fn derivative_from_output(self, y: f32) -> f32 {
        match self {
            Self::Tanh => 1.0 - y * y,
            Self::Relu => f32::from(u8::from(y > 0.0)),
            Self::Sigmoid => y * (1.0 - y),
        }
    }
}

/// `c[m×n] = beta·c + a[m×k]·b[k×n]` with explicit strides (row stride, column stride).
#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
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
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn step_order(time: usize, reverse: bool) -> Box<dyn Iterator<Item = usize>> {
    if reverse {
        Box::new((0..time).rev())
    } else {
        Box::new(0..time)
    }
}

fn valid(lengths: &Option<Vec<usize>>, t: usize, b: usize) -> bool {
    lengths.as_ref().is_none_or(|lengths| t < lengths[b])
}

/// Runs the sequence; returns the packed output and, when `save`, what backward needs.
pub(crate) fn forward(inputs: &Inputs, save: bool) -> (Vec<f32>, Option<Saved>) {
    let Dims {
        time,
        batch,
        hidden,
    } = inputs.dims;
    let recurrence = inputs.recurrence;
    let gh = recurrence.gates() * hidden;
    let bh = batch * hidden;
    let mut h = inputs.h0.clone();
    let mut c = inputs.c0.clone().unwrap_or_default();
    let mut out = vec![0.0; recurrence.packed_rows(time) * bh];
    let mut saved = save.then(|| Saved {
        acts: vec![0.0; time * batch * gh],
        h_prev: vec![0.0; time * bh],
        c_prev: if recurrence.has_cell() {
            vec![0.0; time * bh]
        } else {
            Vec::new()
        },
        aux: match recurrence {
            Recurrence::Rnn(_) => Vec::new(),
            _ => vec![0.0; time * bh],
        },
    });
    let mut hh = vec![0.0; batch * gh];
    let mut acts_row = vec![0.0; gh];
    let mut aux_row = vec![0.0; hidden];
    for t in step_order(time, inputs.reverse) {
        match &inputs.bias {
            Some(bias) => hh
                .chunks_exact_mut(gh)
                .for_each(|row| row.copy_from_slice(bias)),
            None => hh.fill(0.0),
        }
        gemm(
            (batch, hidden, gh),
            &h,
            (hidden, 1),
            &inputs.w_t,
            (gh, 1),
            1.0,
            &mut hh,
        );
        for b in 0..batch {
            if !valid(&inputs.lengths, t, b) {
                continue;
            }
            let row = t * batch + b;
            let xp = &inputs.xp[row * gh..(row + 1) * gh];
            let hh = &hh[b * gh..(b + 1) * gh];
            let h_row = &mut h[b * hidden..(b + 1) * hidden];
            if let Some(saved) = &mut saved {
                saved.h_prev[row * hidden..(row + 1) * hidden].copy_from_slice(h_row);
                if recurrence.has_cell() {
                    saved.c_prev[row * hidden..(row + 1) * hidden]
                        .copy_from_slice(&c[b * hidden..(b + 1) * hidden]);
                }
            }
            match recurrence {
                Recurrence::Rnn(act) => {
                    for j in 0..hidden {
                        let y = act.scalar(xp[j] + hh[j]);
                        acts_row[j] = y;
                        h_row[j] = y;
                    }
                }
                Recurrence::Lstm { peephole, coupled } => {
                    let c_row = &mut c[b * hidden..(b + 1) * hidden];
                    let p = |k: usize, j: usize| match (&inputs.peephole, peephole) {
                        (Some(p), true) => p[k * hidden + j],
                        _ => 0.0,
                    };
                    for j in 0..hidden {
                        let cp = c_row[j];
                        let i = sigmoid(xp[j] + hh[j] + p(0, j) * cp);
                        let f = if coupled {
                            1.0 - i
                        } else {
                            sigmoid(xp[hidden + j] + hh[hidden + j] + p(1, j) * cp)
                        };
                        let g = tanh(xp[2 * hidden + j] + hh[2 * hidden + j]);
                        let cn = f * cp + i * g;
                        let o = sigmoid(xp[3 * hidden + j] + hh[3 * hidden + j] + p(2, j) * cn);
                        let tc = tanh(cn);
                        acts_row[j] = i;
                        acts_row[hidden + j] = f;
                        acts_row[2 * hidden + j] = g;
                        acts_row[3 * hidden + j] = o;
                        aux_row[j] = tc;
                        c_row[j] = cn;
                        h_row[j] = o * tc;
                    }
                }
                Recurrence::GruResetAfter => {
                    for j in 0..hidden {
                        let r = sigmoid(xp[j] + hh[j]);
                        let z = sigmoid(xp[hidden + j] + hh[hidden + j]);
                        let hn = hh[2 * hidden + j];
                        let n = tanh(xp[2 * hidden + j] + r * hn);
                        acts_row[j] = r;
                        acts_row[hidden + j] = z;
                        acts_row[2 * hidden + j] = n;
                        aux_row[j] = hn;
                        h_row[j] = n + z * (h_row[j] - n);
                    }
                }
            }
            if let Some(saved) = &mut saved {
                saved.acts[row * gh..(row + 1) * gh].copy_from_slice(&acts_row);
                if !saved.aux.is_empty() {
                    saved.aux[row * hidden..(row + 1) * hidden].copy_from_slice(&aux_row);
                }
            }
            out[row * hidden..(row + 1) * hidden].copy_from_slice(h_row);
        }
    }
    out[time * bh..(time + 1) * bh].copy_from_slice(&h);
    if recurrence.has_cell() {
        out[(time + 1) * bh..].copy_from_slice(&c);
    }
    (out, saved)
}

/// Backpropagation through time. `grad_out` is the gradient of the packed output.
pub(crate) fn backward(inputs: &Inputs, saved: &Saved, grad_out: &[f32]) -> Grads {
    let Dims {
        time,
        batch,
        hidden,
    } = inputs.dims;
    let recurrence = inputs.recurrence;
    let gh = recurrence.gates() * hidden;
    let bh = batch * hidden;
    let mut dh = grad_out[time * bh..(time + 1) * bh].to_vec();
    let mut dc = if recurrence.has_cell() {
        grad_out[(time + 1) * bh..(time + 2) * bh].to_vec()
    } else {
        Vec::new()
    };
    // Gradient of the pre-activations: as the input projection sees them (`d_xp`) and as
    // the recurrent matmul sees them (`d_hh`); they differ only in the GRU's `n` block.
    let mut d_xp = vec![0.0; time * batch * gh];
    let mut d_hh = match recurrence {
        Recurrence::GruResetAfter => vec![0.0; time * batch * gh],
        _ => Vec::new(),
    };
    let mut d_peephole = vec![0.0; 3 * hidden];
    let peephole = inputs.peephole.as_deref().unwrap_or(&[]);
    for t in step_order(time, !inputs.reverse) {
        for b in 0..batch {
            if !valid(&inputs.lengths, t, b) {
                continue;
            }
            let row = t * batch + b;
            let acts = &saved.acts[row * gh..(row + 1) * gh];
            let g_out = &grad_out[row * hidden..(row + 1) * hidden];
            let dh_row = &mut dh[b * hidden..(b + 1) * hidden];
            let dxp = &mut d_xp[row * gh..(row + 1) * gh];
            match recurrence {
                Recurrence::Rnn(act) => {
                    for j in 0..hidden {
                        dxp[j] = (dh_row[j] + g_out[j]) * act.derivative_from_output(acts[j]);
                        dh_row[j] = 0.0;
                    }
                }
                Recurrence::Lstm {
                    peephole: has_peephole,
                    coupled,
                } => {
                    let dc_row = &mut dc[b * hidden..(b + 1) * hidden];
                    let c_prev = &saved.c_prev[row * hidden..(row + 1) * hidden];
                    let tanh_c = &saved.aux[row * hidden..(row + 1) * hidden];
                    for j in 0..hidden {
                        let (i, f, g, o) = (
                            acts[j],
                            acts[hidden + j],
                            acts[2 * hidden + j],
                            acts[3 * hidden + j],
                        );
                        let (cp, tc) = (c_prev[j], tanh_c[j]);
                        let dh_j = dh_row[j] + g_out[j];
                        let da_o = dh_j * tc * o * (1.0 - o);
                        let mut dc_j = dc_row[j] + dh_j * o * (1.0 - tc * tc);
                        if has_peephole {
                            dc_j += da_o * peephole[2 * hidden + j];
                            d_peephole[2 * hidden + j] += da_o * (f * cp + i * g);
                        }
                        let da_g = dc_j * i * (1.0 - g * g);
                        let (da_i, da_f) = if coupled {
                            (dc_j * (g - cp) * i * (1.0 - i), 0.0)
                        } else {
                            (dc_j * g * i * (1.0 - i), dc_j * cp * f * (1.0 - f))
                        };
                        let mut dc_prev = dc_j * f;
                        if has_peephole {
                            dc_prev += da_i * peephole[j] + da_f * peephole[hidden + j];
                            d_peephole[j] += da_i * cp;
                            d_peephole[hidden + j] += da_f * cp;
                        }
                        dxp[j] = da_i;
                        dxp[hidden + j] = da_f;
                        dxp[2 * hidden + j] = da_g;
                        dxp[3 * hidden + j] = da_o;
                        dc_row[j] = dc_prev;
                        dh_row[j] = 0.0;
                    }
                }
                Recurrence::GruResetAfter => {
                    let h_prev = &saved.h_prev[row * hidden..(row + 1) * hidden];
                    let hh_n = &saved.aux[row * hidden..(row + 1) * hidden];
                    let dhh = &mut d_hh[row * gh..(row + 1) * gh];
                    for j in 0..hidden {
                        let (r, z, n) = (acts[j], acts[hidden + j], acts[2 * hidden + j]);
                        let dh_j = dh_row[j] + g_out[j];
                        let da_n = dh_j * (1.0 - z) * (1.0 - n * n);
                        let da_z = dh_j * (h_prev[j] - n) * z * (1.0 - z);
                        let da_r = da_n * hh_n[j] * r * (1.0 - r);
                        dxp[j] = da_r;
                        dxp[hidden + j] = da_z;
                        dxp[2 * hidden + j] = da_n;
                        dhh[j] = da_r;
                        dhh[hidden + j] = da_z;
                        dhh[2 * hidden + j] = da_n * r;
                        dh_row[j] = dh_j * z;
                    }
                }
            }
        }
        // dh_{t-1} += d_hh[t] · W_hh (rows of finished sequences are zero in d_hh).
        let d_step = match recurrence {
            Recurrence::GruResetAfter => &d_hh[t * batch * gh..(t + 1) * batch * gh],
            _ => &d_xp[t * batch * gh..(t + 1) * batch * gh],
        };
        gemm(
            (batch, gh, hidden),
            d_step,
            (gh, 1),
            &inputs.w_t,
            (1, gh),
            1.0,
            &mut dh,
        );
    }
    let d_all = match recurrence {
        Recurrence::GruResetAfter => &d_hh,
        _ => &d_xp,
    };
    // dW_hhᵀ = Σ_t h_{t-1}ᵀ · d_hh[t], as one matmul over all steps.
    let mut d_w_t = vec![0.0; hidden * gh];
    gemm(
        (hidden, time * batch, gh),
        &saved.h_prev,
        (1, hidden),
        d_all,
        (gh, 1),
        0.0,
        &mut d_w_t,
    );
    let d_bias = inputs.bias.as_ref().map(|_| {
        let mut sum = vec![0.0; gh];
        for row in d_all.chunks_exact(gh) {
            sum.iter_mut().zip(row).for_each(|(s, d)| *s += d);
        }
        sum
    });
    Grads {
        xp: d_xp,
        w_t: d_w_t,
        bias: d_bias,
        peephole: inputs.peephole.as_ref().map(|_| d_peephole),
        h0: dh,
        c0: recurrence.has_cell().then_some(dc),
    }
}
