//! The MFCC / log-mel pipeline: built once per configuration, then applied frame
//! by frame with no allocation inside the loop.

use std::sync::Arc;

use isa::CpuIsa;

use crate::fft::{FftBuffers, PowerSpectrum};
use crate::kernels::{dot, ln_positive_normal, squared_deviation, sum};
use crate::mel::{MelFilterbank, dct_matrix, lifter_weights};
use crate::{
    Energy, FeatureError, FeatureOptions, Framing, LogScale, Preemphasis, Spectrum, window,
};

/// A `[frames, dim]` row-major matrix of features.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    /// Number of frames (rows).
    pub num_frames: usize,
    /// Values per frame (columns).
    pub dim: usize,
    /// `num_frames · dim` values, frame after frame.
    pub data: Vec<f32>,
}

impl Features {
    /// An empty matrix with `dim` columns.
    pub fn empty(dim: usize) -> Self {
        Features {
            num_frames: 0,
            dim,
            data: Vec::new(),
        }
    }

    /// Frame `t` as a slice.
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.data[t * self.dim..(t + 1) * self.dim]
    }

    /// Iterates over frames.
    pub fn frames(&self) -> impl Iterator<Item = &[f32]> {
        self.data
            .chunks_exact(self.dim.max(1))
            .take(self.num_frames)
    }

    /// Appends the frames of `other` (same `dim`).
    pub fn append(&mut self, other: &Features) {
        assert_eq!(self.dim, other.dim, "appending features of another width");
        self.data.extend_from_slice(&other.data);
        self.num_frames += other.num_frames;
    }
}

/// Which matrix a computation returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Cepstra: DCT of the log-mel energies, liftered, c0 optionally replaced by energy.
    Mfcc,
    /// The log-mel energies themselves (Kaldi's fbank, librosa's dB mel spectrogram).
    LogMel,
    /// The power (or magnitude) spectrum, n_fft/2 + 1 bins (librosa's `abs(stft)**2`).
    Spectrum,
}

/// Computes MFCC or log-mel frames for one configuration.
///
/// Building one prepares the window, the mel filterbank, the DCT matrix, the
/// lifter and the FFT plan; computing reuses them for every frame.
///
/// ```
/// use features::{FeatureExtractor, FeatureOptions, Preset};
/// let extractor = FeatureExtractor::new(FeatureOptions::preset(Preset::Kaldi))?;
/// let one_second: Vec<f32> = (0..16000).map(|n| (n as f32 * 0.05).sin() * 0.1).collect();
/// let mfcc = extractor.mfcc(&one_second)?;
/// assert_eq!((mfcc.num_frames, mfcc.dim), (98, 13));
/// # Ok::<(), features::FeatureError>(())
/// ```
#[derive(Clone)]
pub struct FeatureExtractor {
    pub(crate) options: FeatureOptions,
    pub(crate) win: usize,
    pub(crate) hop: usize,
    pub(crate) n_fft: usize,
    pub(crate) window: Vec<f32>,
    pub(crate) filterbank: MelFilterbank,
    pub(crate) dct: Vec<f32>,
    pub(crate) lifter: Vec<f32>,
    pub(crate) fft: Arc<PowerSpectrum>,
}

impl std::fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureExtractor")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl FeatureExtractor {
    /// Validates the options and precomputes everything that does not depend on the audio.
    pub fn new(options: FeatureOptions) -> Result<Self, FeatureError> {
        options.validate()?;
        let (win, hop, n_fft) = (
            options.win_length()?,
            options.hop_length()?,
            options.n_fft()?,
        );
        let filterbank = MelFilterbank::new(&options)?;
        let dct = dct_matrix(options.cepstral.n_mfcc, options.mel.n_mels);
        let lifter = lifter_weights(options.cepstral.n_mfcc, options.cepstral.lifter);
        Ok(FeatureExtractor {
            window: window(options.frame.window, win),
            fft: Arc::new(PowerSpectrum::new(n_fft)),
            options,
            win,
            hop,
            n_fft,
            filterbank,
            dct,
            lifter,
        })
    }

    /// The options this extractor was built from.
    pub fn options(&self) -> &FeatureOptions {
        &self.options
    }

    /// The analysis window.
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// The mel filterbank.
    pub fn filterbank(&self) -> &MelFilterbank {
        &self.filterbank
    }

    /// Width of a frame of the given output.
    pub fn dim(&self, output: Output) -> usize {
        match output {
            Output::Mfcc => self.options.cepstral.n_mfcc,
            Output::LogMel => self.options.mel.n_mels,
            Output::Spectrum => self.n_fft / 2 + 1,
        }
    }

    /// Number of frames `n_samples` samples give (the references' formulas exactly).
    pub fn num_frames(&self, n_samples: usize) -> usize {
        let (win, hop) = (self.win, self.hop);
        match self.options.frame.framing {
            Framing::SnipEdges if n_samples < win => 0,
            Framing::SnipEdges => 1 + (n_samples - win) / hop,
            Framing::Centered { .. } => {
                let padded = n_samples + 2 * (self.n_fft / 2);
                if padded < self.n_fft {
                    0
                } else {
                    1 + (padded - self.n_fft) / hop
                }
            }
            Framing::PadLast if n_samples <= win => 1,
            Framing::PadLast => 1 + (n_samples - win).div_ceil(hop),
        }
    }

    /// MFCC frames of a whole signal (±1 samples at the configured rate).
    pub fn mfcc(&self, samples: &[f32]) -> Result<Features, FeatureError> {
        self.compute(samples, Output::Mfcc)
    }

    /// Log-mel frames of a whole signal.
    pub fn log_mel(&self, samples: &[f32]) -> Result<Features, FeatureError> {
        self.compute(samples, Output::LogMel)
    }

    /// First sample index of frame `t` (negative when the frame starts in the padding).
    pub(crate) fn frame_start(&self, t: usize) -> isize {
        let start = (t * self.hop) as isize;
        match self.options.frame.framing {
            Framing::Centered { .. } => {
                start + ((self.n_fft - self.win) / 2) as isize - (self.n_fft / 2) as isize
            }
            Framing::SnipEdges | Framing::PadLast => start,
        }
    }

    /// Turns one frame of `win` source samples into log-mel energies (the power
    /// spectrum is left in `scratch.power`); returns the log energy.
    ///
    /// On x86-64 the same code is compiled again for AVX2 + FMA (8-lane vectors instead
    /// of SSE's 4) and for AVX-512 (16 lanes); the one [`isa::cpu_isa`] names when the
    /// computation starts runs (the widest the CPU has, unless capped with
    /// [`isa::set_cpu_isa_limit`]). The arithmetic and its order are the same (no operation
    /// is fused or reordered), so the results are too.
    pub(crate) fn process_frame(
        &self,
        source: &[f32],
        scratch: &mut Scratch,
        log_mel: &mut [f32],
    ) -> f32 {
        match scratch.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `scratch.isa` is one the CPU supports (`isa::cpu_isa`).
            CpuIsa::Avx512 => unsafe { self.process_frame_avx512(source, scratch, log_mel) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            CpuIsa::Avx2 => unsafe { self.process_frame_avx2(source, scratch, log_mel) },
            _ => self.process_frame_portable(source, scratch, log_mel),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn process_frame_avx512(
        &self,
        source: &[f32],
        scratch: &mut Scratch,
        log_mel: &mut [f32],
    ) -> f32 {
        self.process_frame_portable(source, scratch, log_mel)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn process_frame_avx2(
        &self,
        source: &[f32],
        scratch: &mut Scratch,
        log_mel: &mut [f32],
    ) -> f32 {
        self.process_frame_portable(source, scratch, log_mel)
    }

    #[inline(always)]
    fn process_frame_portable(
        &self,
        source: &[f32],
        scratch: &mut Scratch,
        log_mel: &mut [f32],
    ) -> f32 {
        let options = &self.options;
        let mut scale = options.frame.sample_scale;
        let source = if options.frame.dither != 0.0 {
            let dithered = &mut scratch.raw[..self.win];
            for (d, x) in dithered.iter_mut().zip(source) {
                *d = x * scale + scratch.gauss.next() * options.frame.dither;
            }
            scale = 1.0;
            &*dithered
        } else {
            source
        };
        // Scaling, DC removal, pre-emphasis and the window are applied in one pass
        // from the source samples into the FFT buffer (no intermediate copies).
        let mean = if options.frame.remove_dc_offset {
            sum(source) * scale / self.win as f32
        } else {
            0.0
        };
        let mut energy = match options.cepstral.energy {
            Energy::RawFrame => squared_deviation(source, scale, mean),
            _ => 0.0,
        };
        let frame = &mut scratch.frame[..self.win];
        if let Preemphasis::PerFrame(k) = options.frame.preemphasis {
            // (x[i] − m) − k·(x[i−1] − m); the first sample uses itself as its predecessor (Kaldi).
            frame[0] = (source[0] * scale - mean) * (1.0 - k) * self.window[0];
            let terms = source[1..].iter().zip(source).zip(&self.window[1..]);
            for (y, ((x, previous), w)) in frame[1..].iter_mut().zip(terms) {
                *y = ((x * scale - mean) - k * (previous * scale - mean)) * w;
            }
        } else {
            for ((y, x), w) in frame.iter_mut().zip(source).zip(&self.window) {
                *y = (x * scale - mean) * w;
            }
        }
        if options.cepstral.energy == Energy::WindowedFrame {
            energy = dot(frame, frame);
        }
        scratch.frame[self.win..].fill(0.0);
        self.fft
            .compute(&scratch.frame, &mut scratch.fft, &mut scratch.power);
        let scale = if options.mel.divide_by_n_fft {
            1.0 / self.n_fft as f32
        } else {
            1.0
        };
        match options.mel.spectrum {
            Spectrum::Power if scale == 1.0 => {}
            Spectrum::Power => scratch.power.iter_mut().for_each(|p| *p *= scale),
            Spectrum::Magnitude => scratch.power.iter_mut().for_each(|p| *p = p.sqrt() * scale),
        }
        let log_energy = match options.cepstral.energy {
            Energy::None => 0.0,
            Energy::RawFrame | Energy::WindowedFrame => energy.max(f32::EPSILON).ln(),
            Energy::SpectrumSum => {
                let total = sum(&scratch.power);
                if total == 0.0 {
                    f64::EPSILON as f32
                } else {
                    total
                }
                .ln()
            }
        };
        let floor = options.cepstral.energy_floor;
        let log_energy = if floor > 0.0 {
            log_energy.max(floor.ln())
        } else {
            log_energy
        };
        self.filterbank.apply(&scratch.power, log_mel);
        match options.mel.log {
            LogScale::Natural { floor } => log_mel.iter_mut().for_each(|v| *v = v.max(floor).ln()),
            // 10·log10 v = (10 / ln 10)·ln v, by a polynomial that vectorises: the dB
            // scale is the librosa preset's, whose tolerance (1e-3 dB) is far above its
            // error; the natural log keeps libm's, bit for bit, for the Kaldi and HTK presets.
            LogScale::Decibel { amin, .. } if amin.is_normal() => {
                let db_per_neper = 10.0 * std::f32::consts::LOG10_E;
                log_mel.iter_mut().for_each(|v| {
                    let x = v.max(amin);
                    *v = if x.is_finite() {
                        db_per_neper * ln_positive_normal(x)
                    } else {
                        x
                    };
                })
            }
            LogScale::Decibel { amin, .. } => log_mel
                .iter_mut()
                .for_each(|v| *v = 10.0 * v.max(amin).log10()),
        }
        log_energy
    }

    /// DCT, lifter and energy: one log-mel frame to one cepstral frame.
    pub(crate) fn cepstra(&self, log_mel: &[f32], log_energy: f32, out: &mut [f32]) {
        let n_mels = log_mel.len();
        for ((c, row), lifter) in out
            .iter_mut()
            .zip(self.dct.chunks_exact(n_mels))
            .zip(&self.lifter)
        {
            *c = dot(row, log_mel) * lifter;
        }
        if self.options.cepstral.energy != Energy::None {
            out[0] = log_energy;
        }
    }
}

/// Per-stream working memory, allocated once.
pub(crate) struct Scratch {
    /// The frame being processed, n_fft long (zero-padded past the window).
    pub(crate) frame: Vec<f32>,
    /// The frame with dither added, when dither is on.
    pub(crate) raw: Vec<f32>,
    pub(crate) fft: FftBuffers,
    pub(crate) power: Vec<f32>,
    pub(crate) gauss: Gaussian,
    /// The instruction set the frame loop runs with.
    pub(crate) isa: CpuIsa,
}

/// Seeded standard normal numbers (xorshift64* and Box–Muller) for dither.
pub(crate) struct Gaussian {
    state: u64,
    spare: Option<f32>,
}

impl Gaussian {
    pub(crate) fn new(seed: u64) -> Self {
        Gaussian {
            state: seed ^ 0x9E37_79B9_7F4A_7C15 | 1,
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(crate) fn next(&mut self) -> f32 {
        if let Some(spare) = self.spare.take() {
            return spare;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let radius = (-2.0 * u.ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * v;
        self.spare = Some((radius * angle.sin()) as f32);
        (radius * angle.cos()) as f32
    }
}
