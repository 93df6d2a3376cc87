//! WAV → MFCC and log-mel frames that match Kaldi, librosa and HTK
//! (python_speech_features), computed with hound and rustfft.
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
//! | [`pcm`] | audio from a pipe as it arrives: raw s16le/f32le or a WAV stream |
//! | [`resample`](mod@resample) | sample-rate conversion with rubato, whole or streamed |
//! | [`options`] | option structs and presets |
//! | [`window`](mod@window), [`mel`] | the pieces: windows, mel filterbanks, DCT, lifter |
//! | [`extractor`] | the extractor built once per configuration, and its per-frame computation |
//! | [`stream`] | audio in chunks of any size, frames out as soon as they are whole; whole signals and WAV files go through the same stream |
//! | [`post`] | deltas and CMVN (per utterance, sliding, causal) |
//! | [`stack`] | consecutive frames joined into one model step |
//! | [`noise`] | additive noise at a set SNR (augmentation) |
//! | [`npy`] | `.npy` reading and atomic writing |
//! | [`pipeline`] | one WAV file to features: read, resample, compute, deltas, CMVN |
//! | [`plot`] | a feature matrix as a PNG image (feature `cli`) |
//!
//! The data flows one way: `wav` or `pcm` → `resample` → `stream` (framing, `window`, FFT, `mel`,
//! DCT, per frame in `extractor`) → `post` → `stack` → `npy`/`plot`; `pipeline` chains them for a file.
//! No module imports one that imports it back (the workspace's `tests/layers.rs` checks it).
//! The `mfcc` binary and `write_png` need feature `cli` (clap, rayon, indicatif, plots); the
//! library builds without them.

pub mod error;
pub mod extractor;
mod fft;
mod kernels;
pub mod mel;
pub mod noise;
pub mod npy;
pub mod options;
pub mod pcm;
pub mod pipeline;
#[cfg(feature = "cli")]
pub mod plot;
pub mod post;
pub mod resample;
mod signal;
pub mod stack;
pub mod stream;
pub mod wav;
pub mod window;

pub use error::FeatureError;
pub use extractor::{FeatureExtractor, Features, Output};
pub use mel::{MelFilterbank, dct_matrix, hz_to_mel, lifter_weights, mel_to_hz, vtln_warp_hz};
pub use npy::{NpyArray, read_npy, write_atomic, write_npy};
pub use options::{
    CepstralOptions, Energy, FeatureOptions, FilterShape, FrameOptions, Framing, LogScale, MelNorm,
    MelOptions, MelScale, Padding, Preemphasis, Preset, Rounding, Span, Spectrum, Vtln, Window,
};
pub use pcm::{PcmFormat, PcmReader};
pub use pipeline::FilePipeline;
#[cfg(feature = "cli")]
pub use plot::write_png;
pub use post::{CausalCmvn, Cmvn, CmvnPrior, add_deltas, apply_cmvn, delta_kernels};
pub use resample::{StreamResampler, resample};
pub use signal::check_finite;
pub use stack::stack_frames;
pub use stream::Stream;
pub use wav::{Audio, Channel, WavBlocks, decode_wav, read_wav};
pub use window::window;
