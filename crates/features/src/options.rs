//! Option structs shaped like Kaldi's (frame, mel, MFCC), with presets that copy
//! Kaldi, librosa and python_speech_features (HTK-style) step by step.
//!
//! Every field can be set in TOML (`[features.frame]`, `[features.mel]`, …) or
//! overridden after a preset is chosen.

use serde::{Deserialize, Serialize};

use crate::FeatureError;

/// A length given in samples or in milliseconds (converted at the configured rate).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Span {
    Samples(usize),
    Ms(f64),
}

/// How milliseconds become whole samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Kaldi: `int(rate · 0.001 · ms)`.
    #[default]
    Truncate,
    /// python_speech_features: round half up.
    HalfUp,
}

/// Where frames start and how the signal's edges are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Kaldi's `snip_edges`: only whole frames, `1 + (N − win) / hop` of them.
    SnipEdges,
    /// librosa's `center=True`: frame t is centred on sample t·hop, the signal is
    /// padded by n_fft/2 each side; `1 + N / hop` frames.
    Centered { pad: Padding },
    /// python_speech_features: frames from sample 0, the last partial frame
    /// zero-padded; `1 + ceil((N − win) / hop)` frames (at least one).
    PadLast,
}

/// Values used beyond the signal's ends by [`Framing::Centered`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// Zeros (librosa 0.11's default `pad_mode="constant"`).
    Zero,
    /// Mirror about the edge sample, as numpy's `reflect`.
    Reflect,
}

/// The analysis window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// 0.5 − 0.5 cos(2πn/M); periodic (M = N, librosa/scipy `fftbins=True`) or symmetric (M = N − 1, Kaldi's `hanning`).
    Hann { periodic: bool },
    /// 0.54 − 0.46 cos(2πn/M).
    Hamming { periodic: bool },
    /// 0.42 − 0.5 cos(2πn/M) + 0.08 cos(4πn/M).
    Blackman { periodic: bool },
    /// Kaldi's default: the symmetric Hann window raised to the power 0.85.
    Povey,
    /// All ones (python_speech_features' default).
    Rectangular,
}

/// When pre-emphasis `y[n] = x[n] − k·x[n−1]` is applied.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preemphasis {
    /// Off.
    None,
    /// Kaldi: inside each frame after DC removal; the first sample becomes `x[0] − k·x[0]`.
    PerFrame(f32),
    /// HTK / python_speech_features: once over the whole signal, `y[0] = x[0]`.
    WholeSignal(f32),
}

/// Framing and the per-frame signal processing before the FFT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameOptions {
    /// Sample rate the features are computed at (Hz). Files at another rate are
    /// resampled when allowed, refused otherwise. Default 16000.
    pub sample_rate: u32,
    /// Factor applied to ±1 samples before anything else: 32768 gives the int16
    /// values Kaldi and python_speech_features see; librosa uses 1.
    pub sample_scale: f32,
    /// Window length; `None` means n_fft (librosa). Kaldi: 25 ms.
    pub win_length: Option<Span>,
    /// Hop between frame starts; `None` means win_length / 4 (librosa). Kaldi: 10 ms.
    pub hop_length: Option<Span>,
    /// How millisecond lengths round to samples.
    pub rounding: Rounding,
    /// FFT size; `None` means the smallest power of two ≥ win_length (Kaldi's
    /// `round_to_power_of_two`). Frames shorter than n_fft are zero-padded.
    pub n_fft: Option<usize>,
    /// Frame placement and edge handling.
    pub framing: Framing,
    /// Gaussian dither added to every sample, in the scaled units (Kaldi's
    /// default is 1.0; all presets use 0 so results are deterministic).
    pub dither: f32,
    /// Seed of the dither's random numbers.
    pub dither_seed: u64,
    /// Subtract each frame's mean (Kaldi).
    pub remove_dc_offset: bool,
    /// Pre-emphasis and where it is applied.
    pub preemphasis: Preemphasis,
    /// The analysis window.
    pub window: Window,
}

/// Which scale the mel bands are evenly spaced on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelScale {
    /// 2595·log10(1 + f/700) = 1127·ln(1 + f/700) (HTK, Kaldi, python_speech_features).
    Htk,
    /// Slaney's Auditory Toolbox: linear below 1 kHz, logarithmic above (librosa's default).
    Slaney,
}

/// How the triangular filters are laid over the FFT bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterShape {
    /// Kaldi: each bin's frequency is mapped to mel and weighted there; the Nyquist bin gets no weight.
    MelDomain,
    /// librosa: triangles in Hz between the band edges converted back from mel.
    Hertz,
    /// python_speech_features: band edges rounded down to integer FFT bins.
    FftBins,
}

/// Normalisation of each filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelNorm {
    /// Peak 1.
    None,
    /// Slaney: area-normalised, each filter scaled by 2 / (upper − lower edge in Hz).
    Slaney,
}

/// Magnitude or power spectrum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spectrum {
    /// |X|².
    Power,
    /// |X|.
    Magnitude,
}

/// The log applied to mel energies.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogScale {
    /// ln(max(x, floor)); Kaldi's floor is f32::EPSILON, python_speech_features' is f64::EPSILON.
    Natural { floor: f32 },
    /// 10·log10(max(x, amin)); with `top_db`, values are raised to at least the whole
    /// input's maximum minus top_db (librosa's `power_to_db`).
    Decibel { amin: f32, top_db: Option<f32> },
}

/// The mel filterbank and its log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MelOptions {
    /// Number of mel bands (Kaldi 23, librosa 128, python_speech_features 26).
    pub n_mels: usize,
    /// Lowest band edge (Hz). Kaldi 20, others 0.
    pub fmin: f32,
    /// Highest band edge (Hz); `None` is the Nyquist frequency; a negative value is
    /// an offset below Nyquist (Kaldi's convention).
    pub fmax: Option<f32>,
    /// Scale the band edges are evenly spaced on.
    pub scale: MelScale,
    /// Filter normalisation.
    pub norm: MelNorm,
    /// How triangles meet FFT bins.
    pub shape: FilterShape,
    /// Spectrum fed to the filters.
    pub spectrum: Spectrum,
    /// Divide the spectrum by n_fft (python_speech_features' `powspec`).
    pub divide_by_n_fft: bool,
    /// The log of the mel energies.
    pub log: LogScale,
    /// Vocal tract length warping of the band edges (Kaldi's `--vtln-warp`); none by default.
    #[serde(default)]
    pub vtln: Option<Vtln>,
}

/// Vocal tract length normalisation: Kaldi's piecewise-linear warp of the filterbank's
/// frequency axis (`MelBanks::VtlnWarpFreq`).
///
/// Between `low·max(1, warp)` and `high·min(1, warp)` a band edge at `f` Hz moves to
/// `f / warp`; below and above, straight lines join that segment to `fmin` and `fmax`, so
/// the filterbank still spans the same range. A warp above 1 moves the bands down
/// (a longer vocal tract's formants fall where a shorter one's would be); 0.8–1.2 is the
/// usual range, and a random warp per utterance in about 0.9–1.1 is VTLP augmentation
/// (Jaitly & Hinton 2013).
///
/// ```
/// use features::{FeatureOptions, Preset, Vtln};
/// let mut options = FeatureOptions::preset(Preset::Kaldi);
/// options.mel.vtln = Some(Vtln { warp: 1.1, ..Vtln::default() });
/// assert!(options.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Vtln {
    /// The warp factor α (1 leaves the filterbank as it is).
    pub warp: f32,
    /// Lower inflection point (Hz), before scaling by `max(1, α)`. Kaldi 100.
    pub low: f32,
    /// Upper inflection point (Hz); a negative value is an offset below Nyquist. Kaldi −500.
    pub high: f32,
}

impl Default for Vtln {
    fn default() -> Self {
        Vtln {
            warp: 1.0,
            low: 100.0,
            high: -500.0,
        }
    }
}

/// What replaces c0, if anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Energy {
    /// Keep the DCT's c0.
    None,
    /// Kaldi (`raw_energy=true`): ln Σx² of the frame after DC removal, before pre-emphasis and window.
    RawFrame,
    /// Kaldi (`raw_energy=false`): ln Σx² of the windowed frame.
    WindowedFrame,
    /// python_speech_features: ln of the sum of the (scaled) power spectrum.
    SpectrumSum,
}

/// Cepstral options on top of the log-mel energies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CepstralOptions {
    /// Number of coefficients kept from the orthonormal DCT-II (Kaldi 13, librosa 20).
    pub n_mfcc: usize,
    /// Sinusoidal lifter 1 + (L/2)·sin(πk/L); 0 turns it off (librosa). Kaldi, HTK: 22.
    pub lifter: f32,
    /// What replaces c0.
    pub energy: Energy,
    /// Lower bound on the log energy (Kaldi's `energy_floor`, given as energy; 0 is none).
    pub energy_floor: f32,
}

/// Everything that defines a feature computation; see [`Preset`] for the usual ones.
///
/// ```
/// use features::{FeatureOptions, Preset, Span};
/// let mut options = FeatureOptions::preset(Preset::Kaldi);
/// options.frame.sample_rate = 8000;
/// options.mel.n_mels = 40;
/// assert_eq!(options.win_length()?, 200); // 25 ms at 8 kHz
/// assert_eq!(options.n_fft()?, 256);
/// # Ok::<(), features::FeatureError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureOptions {
    pub frame: FrameOptions,
    pub mel: MelOptions,
    pub cepstral: CepstralOptions,
}

/// The reference implementations this crate reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Kaldi's `compute-mfcc-feats` / `compute-fbank-feats` with `--dither=0`.
    Kaldi,
    /// `librosa.feature.mfcc` / `power_to_db(melspectrogram)` with librosa 0.11's defaults.
    Librosa,
    /// `python_speech_features.mfcc` / `logfbank` (HTK-style) with its defaults.
    Htk,
}

impl std::str::FromStr for Preset {
    type Err = FeatureError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "kaldi" => Ok(Preset::Kaldi),
            "librosa" => Ok(Preset::Librosa),
            "htk" => Ok(Preset::Htk),
            other => Err(FeatureError::InvalidOptions(format!(
                "unknown preset {other:?} (kaldi, librosa or htk)"
            ))),
        }
    }
}

impl Default for FeatureOptions {
    /// The Kaldi preset.
    fn default() -> Self {
        Self::preset(Preset::Kaldi)
    }
}

impl FeatureOptions {
    /// The options that reproduce one reference implementation.
    pub fn preset(preset: Preset) -> Self {
        match preset {
            Preset::Kaldi => Self::kaldi(),
            Preset::Librosa => Self::librosa(),
            Preset::Htk => Self::htk(),
        }
    }

    /// Kaldi's `compute-mfcc-feats` defaults, `--dither=0`.
    fn kaldi() -> Self {
        FeatureOptions {
            frame: FrameOptions {
                sample_rate: 16000,
                sample_scale: 32768.0,
                win_length: Some(Span::Ms(25.0)),
                hop_length: Some(Span::Ms(10.0)),
                rounding: Rounding::Truncate,
                n_fft: None,
                framing: Framing::SnipEdges,
                dither: 0.0,
                dither_seed: 0,
                remove_dc_offset: true,
                preemphasis: Preemphasis::PerFrame(0.97),
                window: Window::Povey,
            },
            mel: MelOptions {
                n_mels: 23,
                fmin: 20.0,
                fmax: None,
                scale: MelScale::Htk,
                norm: MelNorm::None,
                shape: FilterShape::MelDomain,
                spectrum: Spectrum::Power,
                divide_by_n_fft: false,
                log: LogScale::Natural {
                    floor: f32::EPSILON,
                },
                vtln: None,
            },
            cepstral: CepstralOptions {
                n_mfcc: 13,
                lifter: 22.0,
                energy: Energy::RawFrame,
                energy_floor: 0.0,
            },
        }
    }

    /// librosa's `feature.mfcc` / `melspectrogram` defaults.
    fn librosa() -> Self {
        FeatureOptions {
            frame: FrameOptions {
                sample_rate: 22050,
                sample_scale: 1.0,
                win_length: None,
                hop_length: None,
                rounding: Rounding::Truncate,
                n_fft: Some(2048),
                framing: Framing::Centered { pad: Padding::Zero },
                dither: 0.0,
                dither_seed: 0,
                remove_dc_offset: false,
                preemphasis: Preemphasis::None,
                window: Window::Hann { periodic: true },
            },
            mel: MelOptions {
                n_mels: 128,
                fmin: 0.0,
                fmax: None,
                scale: MelScale::Slaney,
                norm: MelNorm::Slaney,
                shape: FilterShape::Hertz,
                spectrum: Spectrum::Power,
                divide_by_n_fft: false,
                log: LogScale::Decibel {
                    amin: 1e-10,
                    top_db: Some(80.0),
                },
                vtln: None,
            },
            cepstral: CepstralOptions {
                n_mfcc: 20,
                lifter: 0.0,
                energy: Energy::None,
                energy_floor: 0.0,
            },
        }
    }

    /// python_speech_features' `mfcc` / `logfbank` defaults (HTK's conventions).
    fn htk() -> Self {
        FeatureOptions {
            frame: FrameOptions {
                sample_rate: 16000,
                sample_scale: 32768.0,
                win_length: Some(Span::Ms(25.0)),
                hop_length: Some(Span::Ms(10.0)),
                rounding: Rounding::HalfUp,
                n_fft: Some(512),
                framing: Framing::PadLast,
                dither: 0.0,
                dither_seed: 0,
                remove_dc_offset: false,
                preemphasis: Preemphasis::WholeSignal(0.97),
                window: Window::Rectangular,
            },
            mel: MelOptions {
                n_mels: 26,
                fmin: 0.0,
                fmax: None,
                scale: MelScale::Htk,
                norm: MelNorm::None,
                shape: FilterShape::FftBins,
                spectrum: Spectrum::Power,
                divide_by_n_fft: true,
                log: LogScale::Natural {
                    floor: f64::EPSILON as f32,
                },
                vtln: None,
            },
            cepstral: CepstralOptions {
                n_mfcc: 13,
                lifter: 22.0,
                energy: Energy::SpectrumSum,
                energy_floor: 0.0,
            },
        }
    }

    fn samples(&self, span: Span) -> usize {
        match span {
            Span::Samples(n) => n,
            Span::Ms(ms) => {
                let exact = self.frame.sample_rate as f64 * 0.001 * ms;
                match self.frame.rounding {
                    Rounding::Truncate => exact as usize,
                    Rounding::HalfUp => (exact + 0.5).floor() as usize,
                }
            }
        }
    }

    /// Window length in samples.
    pub fn win_length(&self) -> Result<usize, FeatureError> {
        match (self.frame.win_length, self.frame.n_fft) {
            (Some(span), _) => Ok(self.samples(span)),
            (None, Some(n_fft)) => Ok(n_fft),
            (None, None) => Err(FeatureError::InvalidOptions(
                "set win_length or n_fft".into(),
            )),
        }
    }

    /// Hop between frames in samples.
    pub fn hop_length(&self) -> Result<usize, FeatureError> {
        match self.frame.hop_length {
            Some(span) => Ok(self.samples(span)),
            None => Ok(self.win_length()? / 4),
        }
    }

    /// FFT size.
    pub fn n_fft(&self) -> Result<usize, FeatureError> {
        match self.frame.n_fft {
            Some(n) => Ok(n),
            None => Ok(self.win_length()?.next_power_of_two()),
        }
    }

    /// Highest band edge in Hz.
    pub fn fmax(&self) -> f32 {
        let nyquist = self.frame.sample_rate as f32 / 2.0;
        match self.mel.fmax {
            None => nyquist,
            Some(f) if f <= 0.0 => nyquist + f,
            Some(f) => f,
        }
    }

    /// VTLN's lower and upper cutoffs in Hz (a negative `high` counted below Nyquist).
    pub fn vtln_cutoffs(&self, vtln: Vtln) -> (f32, f32) {
        let nyquist = self.frame.sample_rate as f32 / 2.0;
        let high = if vtln.high < 0.0 {
            nyquist + vtln.high
        } else {
            vtln.high
        };
        (vtln.low, high)
    }

    /// Checks that the options describe a computation that can be done.
    pub fn validate(&self) -> Result<(), FeatureError> {
        let bad = |message: String| Err(FeatureError::InvalidOptions(message));
        let rate = self.frame.sample_rate;
        if rate == 0 || rate > 1_000_000 {
            return bad(format!("sample_rate {rate} Hz"));
        }
        let (win, hop, n_fft) = (self.win_length()?, self.hop_length()?, self.n_fft()?);
        if win == 0 || hop == 0 {
            return bad(format!(
                "win_length {win} and hop_length {hop} must be positive"
            ));
        }
        if win > n_fft {
            return bad(format!("win_length {win} is longer than n_fft {n_fft}"));
        }
        if !self.frame.sample_scale.is_finite() || self.frame.sample_scale == 0.0 {
            return bad("sample_scale must be finite and nonzero".into());
        }
        if self.mel.n_mels == 0 {
            return bad("n_mels must be positive".into());
        }
        let fmax = self.fmax();
        if !(self.mel.fmin >= 0.0 && self.mel.fmin < fmax && fmax <= rate as f32 / 2.0) {
            return bad(format!(
                "mel range {}..{fmax} Hz must lie within 0..{} Hz",
                self.mel.fmin,
                rate as f32 / 2.0
            ));
        }
        if let Some(vtln) = self.mel.vtln {
            let (low, high) = self.vtln_cutoffs(vtln);
            let fmin = self.mel.fmin;
            if !(vtln.warp.is_finite() && vtln.warp > 0.0) {
                return bad(format!("vtln warp {} must be positive", vtln.warp));
            }
            if !(fmin < low && low < high && high < fmax) {
                return bad(format!(
                    "vtln cutoffs {low}..{high} Hz must lie strictly inside the mel range {fmin}..{fmax} Hz"
                ));
            }
            let (l, h) = (low * vtln.warp.max(1.0), high * vtln.warp.min(1.0));
            if !(fmin < l && l < h && h < fmax) {
                return bad(format!(
                    "vtln warp {} moves its cutoffs to {l}..{h} Hz, outside the mel range",
                    vtln.warp
                ));
            }
        }
        if self.cepstral.n_mfcc == 0 || self.cepstral.n_mfcc > self.mel.n_mels {
            return bad(format!(
                "n_mfcc {} must be between 1 and n_mels {}",
                self.cepstral.n_mfcc, self.mel.n_mels
            ));
        }
        if self.cepstral.lifter < 0.0 || self.frame.dither < 0.0 {
            return bad("lifter and dither must not be negative".into());
        }
        Ok(())
    }
}
