//! speechrnn: recurrent speech and sequence models in Rust on burn 0.21.
//!
//! One dependency for the three workspace crates:
//! - [`features`]: WAV → MFCC / log-mel frames matching Kaldi, librosa and HTK;
//! - [`models`]: RNN, LSTM and GRU layers on one recurrent driver, generic over any burn
//!   backend, with PyTorch's argument and weight names and fused CPU kernels;
//! - [`train`]: the experiment runner behind the `experiment` binary (TOML configurations,
//!   corpora, checkpoints, reports).
//!
//! From a WAV file to per-frame outputs of a bidirectional LSTM:
//!
//! ```
//! use burn::tensor::{Tensor, TensorData};
//! use burn_ndarray::NdArray;
//! use speechrnn::features::{Channel, FeatureExtractor, FeatureOptions, Preset, read_wav};
//! use speechrnn::models::{CellKind, RecurrentConfig};
//!
//! let audio = read_wav("datasets/default/wav/asterisk/en_US_f_Allison/7_0.wav", Channel::Mean)?;
//! let mut options = FeatureOptions::preset(Preset::Kaldi);
//! options.frame.sample_rate = audio.sample_rate;
//! let mfcc = FeatureExtractor::new(options)?.mfcc(&audio.samples)?; // [frames, 13]
//!
//! let device = Default::default();
//! let lstm = RecurrentConfig::new(CellKind::lstm(), mfcc.dim, 64)
//!     .with_bidirectional(true)
//!     .init::<NdArray>(&device);
//! let x = Tensor::<NdArray, 3>::from_data(
//!     TensorData::new(mfcc.data.clone(), [1, mfcc.num_frames, mfcc.dim]),
//!     &device,
//! );
//! let (y, _) = lstm.forward(x, None, None);
//! assert_eq!(y.dims(), [1, mfcc.num_frames, 128]);
//!
//! // `experiment train` builds the same pipeline from a TOML file.
//! let demo = std::path::Path::new("experiments/spoken-digits-demo.toml");
//! let config = speechrnn::train::ExperimentConfig::load(demo, &[])?;
//! assert_eq!(config.model.hidden_size, 128);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use features;
pub use models;
pub use train;
