//! |FFT|² of a real frame, with the real-to-complex untangling fused into the
//! power computation (one pass, no complex spectrum written out).
//!
//! An even-length real input x of N samples is packed as N/2 complex values
//! z[m] = x[2m] + i·x[2m+1]; with Z = FFT(z) and W = e^(−2πi/N),
//! X[k] = ½(Z[k] + Z*[N/2−k]) − ½i·W^k (Z[k] − Z*[N/2−k]).
//! Odd lengths take a full complex FFT.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// A planned power spectrum of real frames of one length.
pub(crate) struct PowerSpectrum {
    n: usize,
    fft: Arc<dyn Fft<f32>>,
    /// Re and Im of W^k for k in 0..N/2 (even N only), split so the untangling vectorises.
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// Working memory for [`PowerSpectrum::compute`].
pub(crate) struct FftBuffers {
    values: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Z[N/2 − k] for k in 0..N/2, so the untangling reads both operands forwards.
    mirrored: Vec<Complex<f32>>,
}

impl PowerSpectrum {
    pub(crate) fn new(n: usize) -> Self {
        let even = n.is_multiple_of(2);
        let fft = FftPlanner::new().plan_fft_forward(if even { n / 2 } else { n });
        let angles = (0..if even { n / 2 } else { 0 })
            .map(|k| -2.0 * std::f64::consts::PI * k as f64 / n as f64);
        let cos = angles.clone().map(|a| a.cos() as f32).collect();
        let sin = angles.map(|a| a.sin() as f32).collect();
        PowerSpectrum { n, fft, cos, sin }
    }

    pub(crate) fn buffers(&self) -> FftBuffers {
        FftBuffers {
            values: vec![Complex::new(0.0, 0.0); self.fft.len()],
            scratch: vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()],
            mirrored: vec![Complex::new(0.0, 0.0); self.fft.len()],
        }
    }

    /// Writes |X[k]|² for k in 0..=N/2 of the real `input` (length N) into `power`.
    #[inline(always)]
    pub(crate) fn compute(&self, input: &[f32], buffers: &mut FftBuffers, power: &mut [f32]) {
        let values = &mut buffers.values;
        if !self.n.is_multiple_of(2) {
            for (v, &x) in values.iter_mut().zip(input) {
                *v = Complex::new(x, 0.0);
            }
            self.fft.process_with_scratch(values, &mut buffers.scratch);
            for (p, v) in power.iter_mut().zip(values.iter()) {
                *p = v.norm_sqr();
            }
            return;
        }
        let half = self.n / 2;
        for (v, pair) in values.iter_mut().zip(input.chunks_exact(2)) {
            *v = Complex::new(pair[0], pair[1]);
        }
        self.fft.process_with_scratch(values, &mut buffers.scratch);
        let z0 = values[0];
        power[0] = (z0.re + z0.im) * (z0.re + z0.im);
        power[half] = (z0.re - z0.im) * (z0.re - z0.im);
        let mirrored = &mut buffers.mirrored;
        for (m, v) in mirrored[1..half]
            .iter_mut()
            .zip(values[1..half].iter().rev())
        {
            *m = *v;
        }
        let terms = values[1..half]
            .iter()
            .zip(&mirrored[1..half])
            .zip(self.cos[1..half].iter().zip(&self.sin[1..half]));
        for (p, ((a, b), (c, s))) in power[1..half].iter_mut().zip(terms) {
            // X = ½(a + b*) − ½i·w·(a − b*), with w = c + i·s.
            let (sum_re, sum_im) = (a.re + b.re, a.im - b.im);
            let (dif_re, dif_im) = (a.re - b.re, a.im + b.im);
            let (rot_re, rot_im) = (c * dif_re - s * dif_im, c * dif_im + s * dif_re);
            let re = 0.5 * (sum_re + rot_im);
            let im = 0.5 * (sum_im - rot_re);
            *p = re * re + im * im;
        }
    }
}
