//! Mel scales and triangular filterbanks in the three constructions of Kaldi,
//! librosa and python_speech_features.

use crate::{FeatureOptions, FilterShape, MelNorm, MelScale};

/// Hz → mel on the given scale.
pub fn hz_to_mel(hz: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 1127.0 * (1.0 + hz / 700.0).ln(),
        MelScale::Slaney => {
            let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
            let logstep = 6.4f64.ln() / 27.0;
            if hz >= min_log_hz {
                min_log_mel + (hz / min_log_hz).ln() / logstep
            } else {
                hz / f_sp
            }
        }
    }
}

/// mel → Hz on the given scale.
pub fn mel_to_hz(mel: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * ((mel / 1127.0).exp() - 1.0),
        MelScale::Slaney => {
            let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
            let logstep = 6.4f64.ln() / 27.0;
            if mel >= min_log_mel {
                min_log_hz * (logstep * (mel - min_log_mel)).exp()
            } else {
                f_sp * mel
            }
        }
    }
}

/// Kaldi's `MelBanks::VtlnWarpFreq`: the piecewise-linear VTLN warp of `hz` (see
/// [`crate::Vtln`]), in f32 as Kaldi computes it. Frequencies outside `fmin..=fmax` are
/// returned unchanged.
///
/// ```
/// // The middle segment is scaled by 1/warp; the ends stay fixed.
/// let warp = |hz| features::vtln_warp_hz(hz, 100.0, 3500.0, 20.0, 4000.0, 1.1);
/// assert!((warp(1100.0) - 1000.0).abs() < 1e-3);
/// assert_eq!(warp(20.0), 20.0);
/// assert!((warp(4000.0) - 4000.0).abs() < 1e-3);
/// ```
pub fn vtln_warp_hz(hz: f32, low: f32, high: f32, fmin: f32, fmax: f32, warp: f32) -> f32 {
    if hz < fmin || hz > fmax {
        return hz;
    }
    let l = low * warp.max(1.0);
    let h = high * warp.min(1.0);
    let scale = 1.0 / warp;
    let (fl, fh) = (scale * l, scale * h);
    if hz < l {
        fmin + (fl - fmin) / (l - fmin) * (hz - fmin)
    } else if hz < h {
        scale * hz
    } else {
        fmax + (fmax - fh) / (fmax - h) * (hz - fmax)
    }
}

/// One triangular filter: its weights start at FFT bin `first`.
#[derive(Clone, Debug, PartialEq)]
pub struct MelFilter {
    pub first: usize,
    pub weights: Vec<f32>,
}

/// A mel filterbank stored sparsely: each band keeps only its nonzero span.
#[derive(Clone, Debug, PartialEq)]
pub struct MelFilterbank {
    pub filters: Vec<MelFilter>,
    /// Number of FFT bins the filters apply to (n_fft / 2 + 1).
    pub n_bins: usize,
}

impl MelFilterbank {
    /// Builds the filterbank the options describe (options are assumed validated).
    pub fn new(options: &FeatureOptions) -> Result<Self, crate::FeatureError> {
        let n_fft = options.n_fft()?;
        let rate = options.frame.sample_rate as f64;
        let mel = &options.mel;
        let (fmin, fmax) = (mel.fmin as f64, options.fmax() as f64);
        let n_bins = n_fft / 2 + 1;
        let mut dense = vec![vec![0.0f64; n_bins]; mel.n_mels];
        let low = hz_to_mel(fmin, mel.scale);
        let high = hz_to_mel(fmax, mel.scale);
        let mel_points: Vec<f64> = (0..mel.n_mels + 2)
            .map(|i| low + (high - low) * i as f64 / (mel.n_mels + 1) as f64)
            .collect();
        // As in Kaldi, a warp of exactly 1 leaves the filterbank untouched (no round trip).
        let vtln = mel.vtln.filter(|v| v.warp != 1.0);
        let warp_hz = |hz: f32| match vtln {
            Some(vtln) => {
                let (low, high) = options.vtln_cutoffs(vtln);
                vtln_warp_hz(hz, low, high, fmin as f32, fmax as f32, vtln.warp)
            }
            None => hz,
        };
        let hz_points: Vec<f64> = mel_points
            .iter()
            .map(|&m| mel_to_hz(m, mel.scale))
            .map(|hz| match vtln {
                Some(_) => warp_hz(hz as f32) as f64,
                None => hz,
            })
            .collect();
        match mel.shape {
            FilterShape::MelDomain => {
                // Kaldi: bins 0..n_fft/2 (the Nyquist bin is left out), weighted in mel,
                // in f32 arithmetic as Kaldi's `MelBanks` does it.
                let mel32 = |hz: f32| match mel.scale {
                    MelScale::Htk => 1127.0f32 * (1.0f32 + hz / 700.0f32).ln(),
                    MelScale::Slaney => hz_to_mel(hz as f64, mel.scale) as f32,
                };
                let hz32 = |m: f32| match mel.scale {
                    MelScale::Htk => 700.0f32 * ((m / 1127.0f32).exp() - 1.0f32),
                    MelScale::Slaney => mel_to_hz(m as f64, mel.scale) as f32,
                };
                // Kaldi's `VtlnWarpMelFreq`: mel → Hz → warped Hz → mel.
                let warp_mel = |m: f32| match vtln {
                    Some(_) => mel32(warp_hz(hz32(m))),
                    None => m,
                };
                let bin_width = rate as f32 / n_fft as f32;
                let (low, high) = (mel32(fmin as f32), mel32(fmax as f32));
                let delta = (high - low) / (mel.n_mels + 1) as f32;
                for (band, row) in dense.iter_mut().enumerate() {
                    let left = warp_mel(low + band as f32 * delta);
                    let center = warp_mel(low + (band + 1) as f32 * delta);
                    let right = warp_mel(low + (band + 2) as f32 * delta);
                    for (bin, weight) in row.iter_mut().enumerate().take(n_fft / 2) {
                        let m = mel32(bin_width * bin as f32);
                        if m > left && m < right {
                            *weight = if m <= center {
                                (m - left) / (center - left)
                            } else {
                                (right - m) / (right - center)
                            } as f64;
                        }
                    }
                }
            }
            FilterShape::Hertz => hertz_triangles(&mut dense, &hz_points, rate, n_fft),
            FilterShape::FftBins => fft_bin_triangles(&mut dense, &hz_points, rate, n_fft),
        }
        if mel.norm == MelNorm::Slaney {
            for (band, row) in dense.iter_mut().enumerate() {
                let scale = 2.0 / (hz_points[band + 2] - hz_points[band]);
                row.iter_mut().for_each(|w| *w *= scale);
            }
        }
        let filters = dense
            .into_iter()
            .map(|row| MelFilter::from_dense(&row))
            .collect();
        Ok(MelFilterbank { filters, n_bins })
    }

    /// The filterbank as a dense `[n_mels][n_bins]` matrix.
    pub fn to_dense(&self) -> Vec<Vec<f32>> {
        self.filters
            .iter()
            .map(|filter| {
                let mut row = vec![0.0; self.n_bins];
                row[filter.first..filter.first + filter.weights.len()]
                    .copy_from_slice(&filter.weights);
                row
            })
            .collect()
    }

    /// Applies the filters to one spectrum frame.
    #[inline(always)]
    pub fn apply(&self, spectrum: &[f32], out: &mut [f32]) {
        for (filter, out) in self.filters.iter().zip(out) {
            let span = &spectrum[filter.first..filter.first + filter.weights.len()];
            *out = crate::kernels::dot(span, &filter.weights);
        }
    }
}

/// The orthonormal DCT-II as an `n_mfcc × n_mels` row-major matrix (what Kaldi
/// and torchaudio precompute; `scipy.fft.dct(norm="ortho")`).
///
/// ```
/// let dct = features::dct_matrix(2, 4);
/// assert!((dct[0] - 0.5).abs() < 1e-7); // c0 row is 1/sqrt(N)
/// ```
pub fn dct_matrix(n_mfcc: usize, n_mels: usize) -> Vec<f32> {
    let n = n_mels as f64;
    (0..n_mfcc)
        .flat_map(|k| {
            (0..n_mels).map(move |m| {
                let scale = if k == 0 {
                    (1.0 / n).sqrt()
                } else {
                    (2.0 / n).sqrt()
                };
                (scale * (std::f64::consts::PI * k as f64 * (2 * m + 1) as f64 / (2.0 * n)).cos())
                    as f32
            })
        })
        .collect()
}

/// Sinusoidal lifter weights 1 + (L/2)·sin(πk/L) for k in 0..n_mfcc (all ones when L = 0).
pub fn lifter_weights(n_mfcc: usize, lifter: f32) -> Vec<f32> {
    (0..n_mfcc)
        .map(|k| {
            if lifter == 0.0 {
                1.0
            } else {
                let l = lifter as f64;
                (1.0 + 0.5 * l * (std::f64::consts::PI * k as f64 / l).sin()) as f32
            }
        })
        .collect()
}

impl MelFilter {
    /// The non-zero stretch of a dense row of weights.
    fn from_dense(row: &[f64]) -> Self {
        let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
        let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
        MelFilter {
            first,
            weights: row[first..last].iter().map(|&w| w as f32).collect(),
        }
    }
}

/// librosa.filters.mel: triangles in Hz at each bin's frequency.
fn hertz_triangles(dense: &mut [Vec<f64>], hz_points: &[f64], rate: f64, n_fft: usize) {
    for (band, row) in dense.iter_mut().enumerate() {
        let lower_width = hz_points[band + 1] - hz_points[band];
        let upper_width = hz_points[band + 2] - hz_points[band + 1];
        for (bin, weight) in row.iter_mut().enumerate() {
            let f = bin as f64 * rate / n_fft as f64;
            let lower = (f - hz_points[band]) / lower_width;
            let upper = (hz_points[band + 2] - f) / upper_width;
            *weight = lower.min(upper).max(0.0);
        }
    }
}

/// python_speech_features: triangles whose edges are floored to integer bins.
fn fft_bin_triangles(dense: &mut [Vec<f64>], hz_points: &[f64], rate: f64, n_fft: usize) {
    let edges: Vec<usize> = hz_points
        .iter()
        .map(|&hz| ((n_fft + 1) as f64 * hz / rate).floor() as usize)
        .collect();
    for (band, row) in dense.iter_mut().enumerate() {
        let (a, b, c) = (edges[band], edges[band + 1], edges[band + 2]);
        for (bin, weight) in row.iter_mut().enumerate().take(c).skip(a) {
            *weight = if bin < b {
                (bin - a) as f64 / (b - a) as f64
            } else {
                (c - bin) as f64 / (c - b) as f64
            };
        }
    }
}
