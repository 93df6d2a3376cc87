//! WAV → MFCC and log-mel frames that match Kaldi, librosa and HTK
//! (python_speech_features), computed with hound and realfft.
//!
//! The pipeline is configured by [`FeatureOptions`] (frame, mel and cepstral
//! options shaped like Kaldi's) and built once into a [`FeatureExtractor`];
//! [`Preset`] gives the options that reproduce each reference exactly.
//!
//! ```no_run
//! use features::{read_wav, Channel, FeatureExtractor, FeatureOptions, Preset};
//! let audio = read_wav("speech.wav", Channel::Mean)?;
//! let mut options = FeatureOptions::preset(Preset::Kaldi);
//! options.frame.sample_rate = audio.sample_rate;
//! let mfcc = FeatureExtractor::new(options)?.mfcc(&audio.samples)?;
//! println!("{} frames of {}", mfcc.num_frames, mfcc.dim);
//! # Ok::<(), features::FeatureError>(())
//! ```
//!
//! | module | what it does |
//! |---|---|
//! | [`wav`] | WAV decoding (bulk, all PCM widths and float), channel selection |
//! | [`resample`] | sample-rate conversion with rubato |
//! | [`options`] | option structs and presets |
//! | [`window`], [`mel`] | the pieces: windows, mel filterbanks, DCT, lifter |
//! | [`extractor`] | the per-frame pipeline, whole-signal and streaming |
//! | [`post`] | deltas and CMVN |
//! | [`npy`] | `.npy` reading and atomic writing |

pub mod error;
pub mod extractor;
pub mod mel;
pub mod npy;
pub mod options;
pub mod post;
pub mod resample;
pub mod wav;
pub mod window;

pub use error::FeatureError;
pub use extractor::{FeatureExtractor, Features, Output, Stream};
pub use mel::{dct_matrix, hz_to_mel, lifter_weights, mel_to_hz, MelFilterbank};
pub use npy::{read_npy, write_npy, NpyArray};
pub use options::{
    CepstralOptions, Energy, FeatureOptions, FilterShape, FrameOptions, Framing, LogScale, MelNorm,
    MelOptions, MelScale, Padding, Preemphasis, Preset, Rounding, Span, Spectrum, Window,
};
pub use post::{add_deltas, apply_cmvn, Cmvn};
pub use resample::resample;
pub use wav::{decode_wav, read_wav, Audio, Channel};
pub use window::window;
